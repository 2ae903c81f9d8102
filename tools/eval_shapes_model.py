"""Evaluate the bundled ``shapes`` model on held-out scenes, through the stock API.

Loads the model with ``samkit.load_sam("shapes")`` (the same safe path as the official
weights) and measures it with ``SamPredictor`` and ``SamAutomaticMaskGenerator``
exactly as a user calls them (see ``samkit.evaluation``). Prints the figures and writes
them to ``data/models/sam_shapes_eval.json``.

Usage:
    python -m tools.eval_shapes_model --scenes 100
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from samkit.evaluation import EVAL_SIZES, evaluate
from samkit.model import SHAPES_AMG_SETTINGS, download_checkpoint, load_sam

SHAPES_CHECKPOINT = download_checkpoint("shapes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100, help="held-out scenes (seeds 0..N-1)")
    parser.add_argument("--checkpoint", type=Path, default=SHAPES_CHECKPOINT)
    parser.add_argument(
        "--out", type=Path, default=SHAPES_CHECKPOINT.with_name("sam_shapes_eval.json")
    )
    parser.add_argument("--no-amg", action="store_true", help="skip automatic mask generation")
    args = parser.parse_args(argv)

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    sam = load_sam("shapes", checkpoint=args.checkpoint, device="cpu")
    start = time.time()
    with torch.inference_mode():
        report = evaluate(sam, seeds=range(args.scenes), amg=not args.no_amg)
    wall = time.time() - start
    print(report.summary())
    print(f"evaluated in {wall:.0f}s on sizes {', '.join(f'{h}x{w}' for h, w in EVAL_SIZES)} (HxW)")
    result = {
        "scenes": report.scenes,
        "shapes": len(report.box_ious),
        "sizes_hw": [list(s) for s in EVAL_SIZES],
        "box_miou": round(report.box_miou, 4),
        "point_miou": round(report.point_miou, 4),
        "box_as_mask_baseline_miou": round(report.baseline_miou, 4),
        "amg_recall_iou_0.7": None if args.no_amg else round(report.amg_recall, 4),
        "amg_settings": SHAPES_AMG_SETTINGS,
        "wall_time_s": round(wall, 1),
    }
    tmp = args.out.with_name(args.out.name + ".part")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
