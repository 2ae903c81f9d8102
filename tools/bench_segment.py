"""Benchmark ``samkit segment``: images/s of the local engine and of Ray with 1 and 2 actors.

The images are generated scenes of the bundled ``shapes`` model (480x640 by default),
written as PNGs into a temporary folder. A local Ray is started first (as a cluster is
already up when a team uses one), so its start-up is not counted; each run's time does
include loading the model (once per actor). The runs are interleaved, round after round,
so that a machine shared with other work slows them alike; the best round of each is
reported, with Ray's overhead against the local engine on the same number of cores.

Usage:
    python -m tools.bench_segment                       # 8 images, 2 rounds
    python -m tools.bench_segment --images 4 --rounds 1 # quicker
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


#: The runs compared, each with the engine settings it passes to ``segment_images``.
RUNS: dict[str, dict[str, Any]] = {
    "local": {"engine": "local"},
    "ray, 1 actor": {"engine": "ray", "ray_actors": 1},
    "ray, 2 actors": {"engine": "ray", "ray_actors": 2},
}


def write_scenes(folder: Path, count: int, height: int, width: int) -> None:
    """Write ``count`` generated scenes as ``NNNN.png`` into a new ``folder``."""
    from PIL import Image

    from samkit.shapes import make_scene

    folder.mkdir()
    for seed in range(count):
        scene = make_scene(seed, height=height, width=width)
        Image.fromarray(scene.image).save(folder / f"{seed:04d}.png")


def run_rounds(folder: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    """Run every engine once per round, interleaved; the best images/s of each."""
    from samkit.segment.job import segment_images

    best: dict[str, float] = {}
    for round_ in range(args.rounds):
        for name, engine in RUNS.items():
            out = work / f"out-{round_}-{name.replace(' ', '').replace(',', '-')}"
            start = time.perf_counter()
            summary = segment_images(
                [folder],
                out,
                model_type="shapes",
                device="cpu",
                points_per_side=args.points_per_side,
                progress=False,
                **engine,
            )
            seconds = time.perf_counter() - start
            if summary.done != args.images:
                raise RuntimeError(f"{name}: {summary}")
            rate = args.images / seconds
            best[name] = max(best.get(name, 0.0), rate)
            print(f"round {round_ + 1} {name:14s} {rate:6.3f} images/s ({seconds:.1f} s)")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", default="480x640", help="HxW of the scenes")
    parser.add_argument("--points-per-side", type=int, default=8)
    args = parser.parse_args()

    import ray

    height, width = (int(v) for v in args.size.split("x"))
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="samkit-bench-segment-"))
    try:
        write_scenes(work / "in", args.images, height, width)
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        best = run_rounds(work / "in", work, args)
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{args.images} scenes {height}x{width}, shapes model, points_per_side "
        f"{args.points_per_side}, {cores} CPU cores, best of {args.rounds} interleaved rounds"
    )
    for name, rate in best.items():
        overhead = best["local"] / rate - 1
        extra = "" if name == "local" else f"  Ray overhead vs local: {overhead:+.0%}"
        print(f"  {name:14s} {rate:6.3f} images/s{extra}")


if __name__ == "__main__":
    main()
