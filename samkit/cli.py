"""The ``samkit`` command.

``samkit env`` prints the GPU report and the defaults samkit would use here;
``samkit download MODEL [--dest DIR]`` fetches an official checkpoint and verifies it;
``samkit --version`` prints the version. ``python -m samkit`` is the same command.
``samkit segment INPUT... --out DIR [--format coco,yolo,png]`` segments files and folders
of images into one COCO file, YOLO labels or cut-outs (see ``samkit.segment_images``).
``samkit export-onnx MODEL --out FILE [--quantize]`` exports the prompt decoder to ONNX.
``samkit finetune ANNOTATIONS.json --images DIR --model vit_b --out FILE.pth`` fine-tunes
SAM's mask decoder on a COCO data set (see ``samkit.finetune``).

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
from samkit.locations import weights_dir
from samkit.model import MODEL_TYPES, default_model_type, download_checkpoint
from samkit.segment.job import segment_images
from samkit.segment.spec import ENGINES, SegmentUsageError
from samkit.settings import sam_amg_defaults
from samkit.version import __version__


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``samkit`` command.

    Returns:
        The parser, with the ``env``, ``download`` and ``export-onnx`` subcommands.
    """
    parser = argparse.ArgumentParser(
        prog="samkit",
        description="Helpers for Meta's Segment Anything Model (SAM).",
    )
    parser.add_argument("--version", action="version", version=f"samkit {__version__}")
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
    _add_segment(commands)
    export = commands.add_parser(
        "export-onnx",
        help="export the prompt decoder to ONNX (as segment-anything's exporter does)",
        description="Export SAM's prompt decoder (prompt encoder + mask decoder) to ONNX.",
    )
    export.add_argument("model", metavar="MODEL", help=f"model type: {', '.join(MODEL_TYPES)}")
    export.add_argument("--out", metavar="FILE", required=True, help="the .onnx file to write")
    export.add_argument("--checkpoint", metavar="PATH", default=None, help="weights file")
    export.add_argument("--quantize", action="store_true", help="int8 dynamic quantization")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    _add_finetune(commands)
    return parser


def _add_segment(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``samkit segment``: its inputs, outputs, model, generator settings and engine."""
    segment = commands.add_parser(
        "segment",
        help="segment files and folders of images into one COCO annotations.json",
        description=(
            "Segment image files, folders (searched recursively) and globs into one COCO "
            "annotations.json: automatic masks with samkit's settings for the model, or box "
            "prompts from a detector's box file (--boxes); --format writes COCO, YOLO labels or "
            "PNG cut-outs (or several). Resumable: run the same command "
            "again to finish an interrupted run. Exit status 0 when every image is done, 1 "
            "when some failed (the rest is written), 2 for a usage error."
        ),
    )
    segment.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs")
    segment.add_argument("--out", required=True, metavar="DIR", help="the output folder")
    _add_model(segment, checkpoint="a checkpoint file")
    segment.add_argument(
        "--fast", action="store_true", help="load the model with load_sam(fast=True)"
    )
    segment.add_argument(
        "--boxes",
        default=None,
        metavar="FILE",
        help="prompt with boxes: COCO JSON, a folder of YOLO txt files, or samkit boxes JSON",
    )
    _add_text_prompts(segment)
    _add_outputs(segment)
    segment.add_argument(
        "--overwrite", action="store_true", help="delete earlier results in DIR and start afresh"
    )
    segment.add_argument("--engine", choices=ENGINES, default="local", help="where to run")
    segment.add_argument(
        "--ray-address", default=None, metavar="ADDRESS", help="Ray cluster to connect to"
    )
    segment.add_argument(
        "--ray-actors", type=int, default=None, metavar="N", help="model actors on Ray"
    )
    segment.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    generator = segment.add_argument_group(
        "automatic mask generator settings (default: samkit.amg_settings for the model)"
    )
    for name, default in sam_amg_defaults().items():
        kind = float if isinstance(default, float) else int
        generator.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"amg_{name}",
            type=kind,
            default=None,
            metavar="N" if kind is int else "X",
        )


def _add_outputs(segment: argparse.ArgumentParser) -> None:
    """Add what ``samkit segment`` writes: ``--format``, ``--png`` and ``--preview``."""
    segment.add_argument(
        "--format",
        action="append",
        default=None,
        metavar="FORMAT",
        help=(
            "what to write: coco (annotations.json), yolo (labels/*.txt and data.yaml), png "
            "(cut-outs with a transparent background, cutouts/); comma-separated or repeated "
            "(default: coco)"
        ),
    )
    segment.add_argument(
        "--png", action="store_true", help="also write every mask as a black-and-white PNG"
    )
    segment.add_argument("--preview", action="store_true", help="also write an annotated JPEG")


def _add_model(parser: argparse.ArgumentParser, checkpoint: str) -> None:
    """Add the model a command runs: ``--model``, ``--checkpoint`` and ``--device``."""
    parser.add_argument(
        "--model", default=None, help=f"model type: {', '.join(MODEL_TYPES)} (default: samkit's)"
    )
    parser.add_argument("--checkpoint", default=None, metavar="FILE", help=checkpoint)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N, mps (default: samkit's)")


def _add_text_prompts(segment: argparse.ArgumentParser) -> None:
    """Add ``samkit segment``'s text prompts (SAM 3): ``--text`` and ``--text-threshold``."""
    segment.add_argument(
        "--text",
        action="append",
        default=None,
        metavar="PHRASE",
        help="segment every instance of PHRASE with SAM 3 (repeat for several; one category each)",
    )
    segment.add_argument(
        "--text-threshold",
        type=float,
        default=0.5,
        metavar="X",
        help="score an instance of a phrase needs (0 to 1, default 0.5)",
    )


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
    if args.command == "segment":
        return _segment(args)
    if args.command == "finetune":
        return _finetune(args)
    try:
        if args.command == "env":
            _env()
        elif args.command == "export-onnx":
            _export_onnx(args.model, args.out, args.checkpoint, args.quantize, args.opset)
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
    hub = [name for name, spec in MODEL_TYPES.items() if spec.hub is not None]
    print(
        f"SAM 2.1 and SAM 3 ({', '.join(hub)}): transformers {_version('transformers')}, "
        f"weights {env.hf_weights()} (samkit.hf.load_hf)"
    )
    print(f"default device: {env.default_device()} (change it with {env.DEVICE_ENV}=cpu)")
    print(f"weights directory: {weights_dir()}")


def _version(package: str) -> str:
    """An installed package's version, or ``"not installed"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _download(model_type: str, dest: str | None, *, progress: bool) -> None:
    """Download and verify one checkpoint, then say where it is."""
    path = download_checkpoint(model_type, dest_dir=dest, progress=progress)
    checkpoint = MODEL_TYPES[model_type].checkpoint
    if checkpoint is not None and path.name == checkpoint.filename:
        print(f"verified sha256 {checkpoint.sha256[:8]}… -> {path}")
    else:
        print(f"bundled or given checkpoint (no download needed) -> {path}")


def _segment(args: argparse.Namespace) -> int:
    """Run ``samkit segment``; print the summary; return the exit status."""
    overrides = {
        key.removeprefix("amg_"): value
        for key, value in vars(args).items()
        if key.startswith("amg_") and value is not None
    }
    try:
        summary = segment_images(
            args.inputs,
            args.out,
            model_type=args.model,
            checkpoint=args.checkpoint,
            device=args.device,
            fast=args.fast,
            boxes=args.boxes,
            png=args.png,
            preview=args.preview,
            overwrite=args.overwrite,
            engine=args.engine,
            ray_address=args.ray_address,
            ray_actors=args.ray_actors,
            progress=not args.no_progress,
            text=args.text,
            text_threshold=args.text_threshold,
            formats=args.format or "coco",
            **overrides,
        )
    except SegmentUsageError as exc:
        print(f"samkit segment: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("samkit segment: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"samkit segment: error: {exc}", file=sys.stderr)
        return 1
    print(summary)
    return 0 if summary.ok else 1


def _export_onnx(
    model_type: str, out: str, checkpoint: str | None, quantize: bool, opset: int
) -> None:
    """Export one model's prompt decoder to ONNX and say where it went."""
    from samkit.fast.onnx import export_decoder
    from samkit.model import load_sam

    sam = load_sam(model_type, checkpoint=checkpoint, device="cpu")
    path = export_decoder(sam, out, quantize=quantize, opset=opset)
    print(f"exported the {model_type} prompt decoder{' (int8)' if quantize else ''} -> {path}")


def _add_finetune(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``samkit finetune``: a COCO data set in, a fine-tuned checkpoint out."""
    from samkit.finetune.texts import LANGUAGES
    from samkit.finetune.train import DEFAULT_EPOCHS

    finetune = commands.add_parser(
        "finetune",
        help="fine-tune SAM's mask decoder on a COCO data set of your objects",
        description=(
            "Fine-tune SAM's mask decoder (the image encoder frozen, its embeddings cached) "
            "on a COCO instance file and its images; validate by image; keep the best epoch. "
            "Writes FILE.pth (a plain SAM state dict) and FILE.json (settings and metrics). "
            "Exit status 0 when done, 1 when it failed, 2 for a usage error, 130 when "
            "interrupted (run it again with --resume to go on)."
        ),
    )
    finetune.add_argument("annotations", metavar="ANNOTATIONS.json", help="COCO instance file")
    finetune.add_argument(
        "--images", metavar="DIR", default=None, help="images folder (default: the file's folder)"
    )
    _add_model(finetune, checkpoint="base weights file")
    finetune.add_argument("--out", metavar="FILE.pth", required=True, help="checkpoint to write")
    finetune.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="N")
    finetune.add_argument("--val-fraction", type=float, default=0.2, metavar="X")
    finetune.add_argument(
        "--lr", type=float, default=None, metavar="X", help="default: 1e-4 (shapes: 1e-3)"
    )
    finetune.add_argument("--prompts", default="box,point", help="box, point or box,point")
    finetune.add_argument("--seed", type=int, default=0, metavar="S")
    finetune.add_argument("--batch-size", type=int, default=4, metavar="N")
    finetune.add_argument(
        "--anchor",
        type=float,
        default=0.0,
        metavar="X",
        help="pull the weights toward the base model's after each step (forgets less)",
    )
    finetune.add_argument("--corrective", action="store_true", help="train corrective clicks")
    finetune.add_argument(
        "--train-prompt-encoder", action="store_true", help="train the prompt encoder too"
    )
    finetune.add_argument("--fast", action="store_true", help="embeddings with fast=True")
    finetune.add_argument("--resume", action="store_true", help="go on from the last epoch")
    finetune.add_argument("--overwrite", action="store_true", help="discard an earlier run")
    finetune.add_argument("--no-progress", action="store_true", help="no progress bars")
    finetune.add_argument(
        "--language", default="en", choices=LANGUAGES, help="of the progress (default: en)"
    )


def _finetune(args: argparse.Namespace) -> int:
    """Run ``samkit finetune``; print the result; return the exit status."""
    from samkit.finetune import NonFiniteLossError, finetune
    from samkit.finetune.api import check_out
    from samkit.finetune.train import DEFAULT_LR, Settings, check_settings

    name = "samkit finetune"
    try:
        check_out(args.out)
        rate = DEFAULT_LR if args.lr is None else args.lr
        check_settings(Settings(args.epochs, rate, args.val_fraction, args.prompts, args.seed,
                                args.batch_size, anchor=args.anchor))  # fmt: skip
    except ValueError as exc:
        print(f"{name}: usage error: {exc}", file=sys.stderr)
        return 2
    try:
        result = finetune(
            args.annotations,
            args.images,
            args.model,
            args.out,
            checkpoint=args.checkpoint,
            epochs=args.epochs,
            lr=args.lr,
            val_fraction=args.val_fraction,
            prompts=args.prompts,
            seed=args.seed,
            resume=args.resume,
            overwrite=args.overwrite,
            corrective=args.corrective,
            train_prompt_encoder=args.train_prompt_encoder,
            batch_size=args.batch_size,
            anchor=args.anchor,
            fast=args.fast,
            device=args.device,
            progress=not args.no_progress,
            language=args.language,
        )
    except KeyboardInterrupt:
        print(f"{name}: interrupted; run the same command with --resume to go on", file=sys.stderr)
        return 130
    except (ValueError, OSError, NonFiniteLossError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0
