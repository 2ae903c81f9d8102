"""The ``samkit`` command.

``samkit env`` prints the GPU report and the defaults samkit would use here;
``samkit download MODEL [--dest DIR]`` fetches an official checkpoint and verifies it;
``samkit export-onnx MODEL --out FILE [--quantize]`` exports the prompt decoder to ONNX.

Example:
    $ samkit download vit_b --dest weights
    sam_vit_b_01ec64.pth: 100%|██████████| 358M/358M [00:07<00:00, 48.9MB/s]
    verified sha256 ec2df627… -> weights/sam_vit_b_01ec64.pth
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from samkit import env
from samkit.model import SAM_BUILDERS, default_model_type
from samkit.weights import CHECKPOINTS, default_weights_dir, download_checkpoint


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``samkit`` command.

    Returns:
        The parser, with the ``env``, ``download`` and ``export-onnx`` subcommands.
    """
    parser = argparse.ArgumentParser(
        prog="samkit",
        description="Helpers for Meta's Segment Anything Model (SAM).",
    )
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
        help=f"model type: {', '.join([*CHECKPOINTS, 'shapes'])}",
    )
    download.add_argument(
        "--dest",
        metavar="DIR",
        default=None,
        help="directory to keep the checkpoint in (default: SAMKIT_HOME, or the user cache)",
    )
    download.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    export = commands.add_parser(
        "export-onnx",
        help="export the prompt decoder to ONNX (as segment-anything's exporter does)",
        description="Export SAM's prompt decoder (prompt encoder + mask decoder) to ONNX.",
    )
    export.add_argument("model", metavar="MODEL", help=f"model type: {', '.join(SAM_BUILDERS)}")
    export.add_argument("--out", metavar="FILE", required=True, help="the .onnx file to write")
    export.add_argument("--checkpoint", metavar="PATH", default=None, help="weights file")
    export.add_argument("--quantize", action="store_true", help="int8 dynamic quantization")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``samkit`` command.

    Args:
        argv: The arguments, without the program name (``sys.argv[1:]`` when ``None``).

    Returns:
        The exit status: 0 on success, 1 when the command failed (the reason is printed
        on stderr), 2 for a usage error.
    """
    args = build_parser().parse_args(argv)
    try:
        if args.command == "env":
            _env()
        elif args.command == "export-onnx":
            _export_onnx(args.model, args.out, args.checkpoint, args.quantize, args.opset)
        else:
            _download(args.model, args.dest, progress=not args.no_progress)
    except (ValueError, OSError) as exc:
        print(f"samkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _env() -> None:
    """Print the GPU report and samkit's defaults."""
    print(env.gpu_report())
    print(f"default model type: {default_model_type()} (choices: {', '.join(SAM_BUILDERS)})")
    print(f"default device: {env.default_device()}")
    print(f"weights directory: {default_weights_dir()}")


def _download(model_type: str, dest: str | None, *, progress: bool) -> None:
    """Download and verify one checkpoint, then say where it is."""
    path = download_checkpoint(model_type, dest_dir=dest, progress=progress)
    if model_type in CHECKPOINTS:
        print(f"verified sha256 {CHECKPOINTS[model_type].sha256[:8]}… -> {path}")
    else:
        print(f"bundled checkpoint (no download needed) -> {path}")


def _export_onnx(
    model_type: str, out: str, checkpoint: str | None, quantize: bool, opset: int
) -> None:
    """Export one model's prompt decoder to ONNX and say where it went."""
    from samkit.model import load_sam
    from samkit.onnx_export import export_decoder

    sam = load_sam(model_type, checkpoint=checkpoint, device="cpu")
    path = export_decoder(sam, out, quantize=quantize, opset=opset)
    print(f"exported the {model_type} prompt decoder{' (int8)' if quantize else ''} -> {path}")
