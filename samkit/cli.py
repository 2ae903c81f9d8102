"""The ``samkit`` command.

``samkit env`` prints the GPU report and the defaults samkit would use here;
``samkit download MODEL [--dest DIR]`` fetches an official checkpoint and verifies it;
``samkit --version`` prints the version. ``python -m samkit`` is the same command.

Example:
    $ samkit download vit_b --dest weights
    sam_vit_b_01ec64.pth: 100%|██████████| 358M/358M [00:07<00:00, 48.9MB/s]
    verified sha256 ec2df627… -> weights/sam_vit_b_01ec64.pth
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import samkit
from samkit import env
from samkit.locations import weights_dir
from samkit.model import MODEL_TYPES, default_model_type, download_checkpoint


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``samkit`` command.

    Returns:
        The parser, with the ``env`` and ``download`` subcommands.
    """
    parser = argparse.ArgumentParser(
        prog="samkit",
        description="Helpers for Meta's Segment Anything Model (SAM).",
    )
    parser.add_argument("--version", action="version", version=f"samkit {samkit.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "env",
        help="show the GPU report, the default model type and device",
        description="Show the GPU report, the default model type and device.",
    )
    download = commands.add_parser(
        "download",
        help="download an official checkpoint and verify its sha256",
        description="Download an official SAM checkpoint (once) and verify its sha256.",
    )
    download.add_argument(
        "model",
        metavar="MODEL",
        help=f"model type: {', '.join(MODEL_TYPES)}",
    )
    download.add_argument(
        "--dest",
        metavar="DIR",
        default=None,
        help="directory to keep the checkpoint in (default: SAMKIT_HOME, or the user cache)",
    )
    download.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``samkit`` command.

    Args:
        argv: The arguments, without the program name (``sys.argv[1:]`` when ``None``).

    Returns:
        The exit status: 0 on success, 1 when the command failed (the reason is printed
        on stderr), 2 for a usage error, 130 when interrupted with Ctrl-C (one line on
        stderr; an interrupted download keeps its ``.part`` file and resumes from it).
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "env":
            _env()
        else:
            _download(args.model, args.dest, progress=not args.no_progress)
    except KeyboardInterrupt:
        resume = "; run it again to resume" if args.command == "download" else ""
        print(f"samkit: interrupted{resume}", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        print(f"samkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _env() -> None:
    """Print the GPU report and samkit's defaults."""
    print(env.gpu_report())
    print(f"default model type: {default_model_type()} (choices: {', '.join(MODEL_TYPES)})")
    print(f"default device: {env.default_device()}")
    print(f"weights directory: {weights_dir()}")


def _download(model_type: str, dest: str | None, *, progress: bool) -> None:
    """Download and verify one checkpoint, then say where it is."""
    path = download_checkpoint(model_type, dest_dir=dest, progress=progress)
    checkpoint = MODEL_TYPES[model_type].checkpoint
    if checkpoint is not None and path.name == checkpoint.filename:
        print(f"verified sha256 {checkpoint.sha256[:8]}… -> {path}")
    else:
        print(f"bundled or given checkpoint (no download needed) -> {path}")
