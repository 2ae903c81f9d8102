"""Benchmark: samkit's bundled model and helpers against stock segment-anything.

Each model runs in its own process, so peak memory is its own. The stock model is
segment-anything's ``vit_b`` architecture built by its own registry; its weights are
random here (no checkpoint can be downloaded offline), which does not change speed
or memory. Every figure is the median of several runs on the same 480x640 image.

The fast-path table (``tools.bench_fast``) is printed twice: on the CPU as it is, and
with its instruction set capped to AVX2 (``SAMKIT_MAX_CPU_ISA=avx2``), what a learner's
laptop has; each starts with the CPU's model and flags.

Usage:
    python -m tools.bench               # both models, converters, the live widget, the fast path
    python -m tools.bench --quick       # fewer repetitions, 8x8 points, 3 shapes scenes
    python -m tools.bench --only fast   # the fast-path table alone
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench_fast import measure_fast, print_fast
from tools.bench_timing import median_ms as _median_ms

ROOT = Path(__file__).resolve().parent.parent


def measure_model(model_type: str, repeat: int) -> dict[str, float]:
    """Time one model type through the stock SamPredictor; runs in a child process."""
    import numpy as np
    import torch
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry

    import samkit
    from samkit.model import SHAPES_AMG_SETTINGS

    torch.set_num_threads(2)
    scene = samkit.shapes.make_scene(0, 480, 640)
    start = time.perf_counter()
    if model_type == "shapes":
        sam = samkit.load_sam("shapes", device="cpu")
    else:
        sam = sam_model_registry[model_type]().eval()
    load_ms = (time.perf_counter() - start) * 1000
    predictor = SamPredictor(sam)
    out: dict[str, float] = {"load_ms": load_ms}
    with torch.inference_mode():
        out["set_image_ms"] = _median_ms(
            lambda: predictor.set_image(scene.image), max(1, repeat // 4)
        )
        box = scene.xyxy[0]
        out["predict_box_ms"] = _median_ms(
            lambda: predictor.predict(box=box, multimask_output=True), repeat
        )
        point = np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]])
        out["predict_point_ms"] = _median_ms(
            lambda: predictor.predict(
                point_coords=point, point_labels=np.array([1]), multimask_output=True
            ),
            repeat,
        )
        generator = SamAutomaticMaskGenerator(sam, **SHAPES_AMG_SETTINGS)
        out["amg_16x16_ms"] = _median_ms(lambda: generator.generate(scene.image), 1)
    out["parameters_m"] = sum(p.numel() for p in sam.parameters()) / 1e6
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def measure_converters(repeat: int) -> dict[str, float]:
    """samkit's converters against calling supervision directly on the same output."""
    import supervision as sv
    import torch
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor

    import samkit
    from samkit.model import SHAPES_AMG_SETTINGS

    scene = samkit.shapes.make_scene(0, 480, 640)
    sam = samkit.load_sam("shapes", device="cpu")
    with torch.inference_mode():
        results = SamAutomaticMaskGenerator(sam, **SHAPES_AMG_SETTINGS).generate(scene.image)
        predictor = SamPredictor(sam)
        predictor.set_image(scene.image)
        masks, scores, logits = predictor.predict(box=scene.xyxy[0], multimask_output=True)
    widget = samkit.xyxy_to_bboxes(scene.xyxy)
    return {
        "amg_masks": float(len(results)),
        "sv_from_sam_ms": _median_ms(lambda: sv.Detections.from_sam(results), repeat),
        "amg_to_detections_ms": _median_ms(lambda: samkit.amg_to_detections(results), repeat),
        "sv_manual_predict_ms": _median_ms(
            lambda: sv.Detections(xyxy=sv.mask_to_xyxy(masks), mask=masks, confidence=scores),
            repeat,
        ),
        "prediction_to_detections_ms": _median_ms(
            lambda: samkit.prediction_to_detections(masks, scores, logits), repeat
        ),
        "bboxes_to_xyxy_us": _median_ms(lambda: samkit.bboxes_to_xyxy(widget), repeat) * 1000,
    }


def measure_live(repeat: int) -> dict[str, float]:
    """One prompt through samkit.LiveSegmenter (kernel side) against a bare predict."""
    import numpy as np
    import torch
    from segment_anything import SamPredictor

    import samkit

    torch.set_num_threads(2)
    scene = samkit.shapes.make_scene(0, 480, 640)
    sam = samkit.load_sam("shapes", device="cpu")
    predictor = SamPredictor(sam)
    predictor.set_image(scene.image)
    boxes = [scene.xyxy[0].tolist(), scene.xyxy[1].tolist()]
    out: dict[str, float] = {}
    out["predict_box_ms"] = _median_ms(
        lambda: predictor.predict(box=np.asarray(boxes[0]), multimask_output=True), repeat
    )
    for key, threads in (("live_prompt_ms", None), ("live_prompt_2_threads_ms", 2)):
        live = samkit.LiveSegmenter(predictor, scene.image, box=boxes[1], decoder_threads=threads)
        turn = iter(range(10**9))

        def prompt(live: Any = live, turn: Any = turn) -> None:
            i = next(turn)
            live.set_state({"box": boxes[i % 2], "request": i + 1})

        out[key] = _median_ms(prompt, repeat)
    return out


def _child(
    kind: str, repeat: int, extra: tuple[str, ...] = (), isa: str | None = None
) -> dict[str, Any]:
    env = {**os.environ, **({"SAMKIT_MAX_CPU_ISA": isa} if isa else {})}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--child", kind, "--repeat", str(repeat), *extra],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_models(repeat: int) -> None:
    """Print the model, converter and live tables, each measured in a child process."""
    stock = _child("vit_b", repeat)
    ours = _child("shapes", repeat)
    print("Model (480x640 image, CPU, 2 threads)   stock vit_b   samkit shapes   ratio")
    for key, label in [
        ("parameters_m", "parameters (M)"),
        ("load_ms", "build/load (ms)"),
        ("set_image_ms", "set_image: embedding (ms)"),
        ("predict_box_ms", "predict, box (ms)"),
        ("predict_point_ms", "predict, point (ms)"),
        ("amg_16x16_ms", "automatic masks, 16x16 (ms)"),
        ("peak_rss_mb", "peak memory RSS (MB)"),
    ]:
        ratio = ours[key] / stock[key] if stock[key] else float("nan")
        print(f"{label:<38} {stock[key]:>11.1f}   {ours[key]:>13.1f}   {ratio:>5.3f}")
    print_converters(_child("converters", repeat))
    print_live(_child("live", repeat))


def print_converters(conv: dict[str, float]) -> None:
    """Print the converters against supervision's own."""
    print()
    print(f"Converters (on {int(conv['amg_masks'])} AMG masks / 3 predicted masks)   ms")
    print(f"  sv.Detections.from_sam                {conv['sv_from_sam_ms']:8.3f}")
    ratio = conv["amg_to_detections_ms"] / conv["sv_from_sam_ms"]
    print(
        f"  samkit.amg_to_detections              {conv['amg_to_detections_ms']:8.3f}"
        f"   ratio {ratio:.2f}"
    )
    print(f"  sv.Detections by hand (predict)       {conv['sv_manual_predict_ms']:8.3f}")
    ratio = conv["prediction_to_detections_ms"] / conv["sv_manual_predict_ms"]
    print(
        f"  samkit.prediction_to_detections       {conv['prediction_to_detections_ms']:8.3f}"
        f"   ratio {ratio:.2f}"
    )
    print(f"  samkit.bboxes_to_xyxy (us)            {conv['bboxes_to_xyxy_us']:8.1f}")


def print_live(live: dict[str, float]) -> None:
    """Print a prompt in the live widget against a bare predictor call."""
    print()
    print("LiveSegmenter, one prompt in the kernel (shapes, box, 3 masks)   ms   ratio")
    print(f"  bare SamPredictor.predict (2 threads)    {live['predict_box_ms']:8.1f}")
    for key, label in [
        ("live_prompt_2_threads_ms", "prompt + overlays, decoder on 2 threads"),
        ("live_prompt_ms", "prompt + overlays, decoder on 1 thread "),
    ]:
        ratio = live[key] / live["predict_box_ms"]
        print(f"  {label}  {live[key]:8.1f}   {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions, 8x8 points, 3 shapes scenes"
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", choices=["models", "fast"], default=None)
    parser.add_argument("--amg-side", type=int, default=32, help="fast table: AMG points per side")
    parser.add_argument("--scenes", type=int, default=20, help="fast table: shapes scenes")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeat = 5 if args.quick else args.repeat
    if args.quick:
        args.amg_side, args.scenes = min(args.amg_side, 8), min(args.scenes, 3)
    if args.child == "fast":
        print(json.dumps(measure_fast(repeat, args.amg_side, args.scenes)))
        return 0
    if args.child == "converters":
        print(json.dumps(measure_converters(repeat)))
        return 0
    if args.child == "live":
        print(json.dumps(measure_live(repeat)))
        return 0
    if args.child is not None:
        print(json.dumps(measure_model(args.child, repeat)))
        return 0
    if args.only != "fast":
        print_models(repeat)
    if args.only != "models":
        extra = ("--amg-side", str(args.amg_side), "--scenes", str(args.scenes))
        for isa in (None, "avx2"):  # as the CPU is, then as an AVX2 laptop's would be
            print()
            print_fast(_child("fast", repeat, extra, isa))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
