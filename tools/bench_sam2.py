"""Benchmark: SAM 2.1 tiny (transformers, through samkit.hf) against stock SAM ``vit_b``.

Both at full size with random weights (nothing can be downloaded here; weights do not
change speed or memory), on the same 480x640 image, each in its own process so that
peak memory is its own, one after the other in the same run. SAM 2.1 tiny runs twice:
in float32 (what ``samkit.hf.choose_dtype`` picks on a CPU) and in bfloat16, to see
whether bfloat16 would pay on this CPU; the bfloat16 row also gives the relative error
of its low-resolution logits against float32 on the same weights.

Usage:
    python -m tools.bench_sam2            # the table
    python -m tools.bench_sam2 --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

from tools.bench_timing import median_ms

#: The box prompt (xyxy) given to both predictors.
BOX = [150.0, 100.0, 420.0, 330.0]


def measure(kind: str, repeat: int) -> dict[str, float]:
    """One model's load, embedding and box-prompt times; runs in a child process."""
    import numpy as np
    import torch

    import samkit

    torch.set_num_threads(2)
    image = samkit.shapes.make_scene(0, 480, 640).image
    box = np.array(BOX, dtype=np.float32)
    start = time.perf_counter()
    if kind == "vit_b":
        from segment_anything import SamPredictor, sam_model_registry

        predictor: Any = SamPredictor(sam_model_registry["vit_b"]().eval())
    else:
        dtype = torch.bfloat16 if kind == "sam2.1_tiny_bf16" else torch.float32
        predictor = samkit.hf.load_predictor(
            "sam2.1_tiny", weights="random", device="cpu", dtype=dtype
        )
    out: dict[str, float] = {"load_ms": (time.perf_counter() - start) * 1000}
    predictor.set_image(image)  # warm-up
    out["embed_ms"] = median_ms(lambda: predictor.set_image(image), repeat)
    predictor.predict(box=box)
    out["prompt_ms"] = median_ms(lambda: predictor.predict(box=box), repeat * 3)
    if kind == "sam2.1_tiny_bf16":
        low = predictor.predict(box=box)[2]
        reference = samkit.hf.load_predictor("sam2.1_tiny", weights="random", device="cpu")
        reference.set_image(image)
        exact = reference.predict(box=box)[2]
        out["logits_rel_error"] = float(np.abs(low - exact).max() / (np.abs(exact).max() + 1e-12))
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def _child(kind: str, repeat: int) -> dict[str, float]:
    command = [sys.executable, "-m", "tools.bench_sam2", "--child", kind, "--repeat", str(repeat)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 3)
    if args.child:
        print(json.dumps(measure(args.child, repeat)))
        return 0
    stock = _child("vit_b", repeat)
    tiny = _child("sam2.1_tiny", repeat)
    bf16 = _child("sam2.1_tiny_bf16", repeat)
    print("SAM 2.1 tiny (transformers) vs stock SAM vit_b, random weights, 480x640, CPU, 2 threads")
    print()
    print("| what | vit_b | SAM 2.1 tiny f32 | ratio | SAM 2.1 tiny bf16 | ratio |")
    print("|---|---|---|---|---|---|")
    for key, label in (
        ("embed_ms", "embedding (set_image), ms"),
        ("prompt_ms", "box prompt (predict), ms"),
        ("load_ms", "build / load, ms"),
        ("peak_mb", "peak memory, MB"),
    ):
        print(
            f"| {label} | {stock[key]:.1f} | {tiny[key]:.1f} | {tiny[key] / stock[key]:.3f} "
            f"| {bf16[key]:.1f} | {bf16[key] / stock[key]:.3f} |"
        )
    print(f"| bf16 logits, relative error vs f32 | | | | {bf16['logits_rel_error']:.1e} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
