"""Benchmark ``samkit.finetune``: time, the cached epochs, and what the fine-tuning buys.

1. The bundled ``shapes`` model fine-tuned on 40 generated images (``samkit.rings``
   scenes, half of them scenes it already knows) for the default epochs: wall and
   CPU time of the whole call and of each epoch. The first epoch computes the training
   images' embeddings (the cold cache); the later ones read them.
2. What it buys: box mIoU on 30 held-out ring scenes and on the bundled model's own
   evaluation (60 scenes), through the stock ``SamPredictor``, before and after.
3. A full-size ``vit_b`` of random weights (same speed as Meta's), 4 images, 2 epochs:
   the first epoch against the second where the image encoder is real-size.

Training runs on one thread (deterministic, and on a shared machine faster than two
threads waiting for each other); the machine is shared, so CPU time is printed too.

Usage:
    python -m tools.bench_finetune            # all three (about 5 minutes idle)
    python -m tools.bench_finetune --no-vit-b # the bundled model only
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

#: The recipe measured (also the proof in tests/finetune/test_proof.py).
COUNT, SEED, KNOWN, ANCHOR, PROMPTS = 40, 1000, 0.5, 70.0, "box"
RING_SEEDS, SHAPES_SEEDS = range(5000, 5030), range(60)


def _epochs(history: list[dict[str, Any]]) -> None:
    print(
        f"{'epoch':>5} {'wall s':>8} {'CPU s':>8} {'val s':>6} {'box mIoU':>9} {'point mIoU':>11}"
    )
    for h in history:
        wall = f"{h['seconds']:8.2f}" if h["epoch"] else f"{'-':>8}"
        cpu = f"{h.get('cpu_seconds', 0):8.2f}" if h["epoch"] else f"{'-':>8}"
        val = f"{h.get('val_seconds', h['seconds']):6.2f}"
        print(f"{h['epoch']:>5} {wall} {cpu} {val} {h['box_miou']:9.3f} {h['point_miou']:11.3f}")


def _ratio(history: list[dict[str, Any]]) -> str:
    first, second = history[1], history[2]
    return (
        f"first epoch / second epoch: wall {first['seconds'] / second['seconds']:.1f}x, "
        f"CPU {first['cpu_seconds'] / second['cpu_seconds']:.1f}x"
    )


def bench_shapes(folder: Path) -> None:
    """Fine-tune the bundled model on 40 images and measure what it buys."""
    import samkit
    from samkit.evaluation import evaluate
    from samkit.finetune import finetune
    from samkit.finetune.coco import ring_dataset
    from samkit.rings import make_ring_scene
    from samkit.shapes import Scene

    data = ring_dataset(folder / "data", COUNT, SEED, known=KNOWN)
    wall, cpu = time.perf_counter(), time.process_time()
    result = finetune(
        data, model_type="shapes", out=folder / "rings.pth", anchor=ANCHOR, prompts=PROMPTS,
        progress=False,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"\n## shapes: {COUNT} images (half known scenes), {len(result.history) - 1} epochs "
        f"(the default), prompts {PROMPTS}, anchor {ANCHOR:g}"
    )
    print(f"whole call: {wall:.1f} s wall, {cpu:.1f} s CPU (target: under 180 s)")
    _epochs(result.history)
    print(_ratio(result.history))
    base = samkit.load_sam("shapes", device="cpu")
    tuned = samkit.load_sam("shapes", checkpoint=result.checkpoint, device="cpu")

    def training_size(seed: int, height: int, width: int) -> Scene:
        return make_ring_scene(seed)

    rings = [evaluate(m, RING_SEEDS, amg=False, scenes=training_size) for m in (base, tuned)]
    mixed = [evaluate(m, RING_SEEDS, amg=False, scenes=make_ring_scene) for m in (base, tuned)]
    shapes = [evaluate(m, SHAPES_SEEDS, amg=False) for m in (base, tuned)]
    print(f"{'box mIoU':36s} {'bundled':>8} {'tuned':>8} {'change':>8}")
    rows = (
        ("held-out ring scenes, 480x640 (30)", rings),
        ("the same, half of them 600x400", mixed),
        ("shapes evaluation (60)", shapes),
    )
    for name, (a, b) in rows:
        print(f"{name:36s} {a.box_miou:8.3f} {b.box_miou:8.3f} {b.box_miou - a.box_miou:+8.3f}")
    a, b = shapes
    print(f"{'shapes evaluation, point':36s} {a.point_miou:8.3f} {b.point_miou:8.3f} "
          f"{b.point_miou - a.point_miou:+8.3f}")  # fmt: skip


def bench_vit_b(folder: Path) -> None:
    """Two epochs of a random vit_b over 4 images: the cache where the encoder is large."""
    import torch
    from segment_anything import sam_model_registry

    from samkit.finetune import finetune
    from samkit.finetune.coco import ring_dataset

    torch.manual_seed(0)
    checkpoint = folder / "vit_b_random.pth"
    torch.save(sam_model_registry["vit_b"]().state_dict(), checkpoint)
    data = ring_dataset(folder / "vit_b_data", count=4, seed=7)
    result = finetune(data, model_type="vit_b", checkpoint=checkpoint, device="cpu",
                      out=folder / "vit_b.pth", epochs=2, progress=False)  # fmt: skip
    print("\n## vit_b (random weights): 4 images (3 train, 1 validation), 2 epochs")
    _epochs(result.history)
    print(_ratio(result.history))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-vit-b", action="store_true", help="leave out the vit_b part")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(f"load average at the start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as scratch:
        bench_shapes(Path(scratch))
        if not args.no_vit_b:
            bench_vit_b(Path(scratch))
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
