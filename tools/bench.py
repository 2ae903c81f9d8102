# longer than 400 lines because every table of `make bench` is measured side by side with
# stock segment-anything in child processes of this one script.
"""Benchmark: samkit's bundled model and helpers against stock segment-anything.

Each model runs in its own process, so peak memory is its own. The stock model is
segment-anything's ``vit_b`` architecture built by its own registry; its weights are
random here (no checkpoint can be downloaded offline), which does not change speed
or memory. Every figure is the median of several runs on the same 480x640 image.

The fast-path table puts stock segment-anything and ``load_sam(..., fast=True)`` with
``FastMaskGenerator`` side by side in one process, on the same ``vit_b`` weights
(random, seeded, saved to a temporary checkpoint so that the first load converts and
the second hits the cache), and measures the fidelity on the bundled ``shapes`` model.

Usage:
    python -m tools.bench               # both models, converters, the live widget, the fast path
    python -m tools.bench --quick       # fewer repetitions
    python -m tools.bench --only fast   # the fast-path table alone
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


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


def _match_recall(stock: list[dict[str, Any]], ours: list[dict[str, Any]]) -> float:
    """Share of stock masks that have a mask in ``ours`` at IoU >= 0.9."""
    import samkit

    if not stock:
        return float("nan")
    matched = 0
    for record in stock:
        ious = [
            float(samkit.masks.mask_iou(record["segmentation"], o["segmentation"])) for o in ours
        ]
        matched += bool(ious) and max(ious) >= 0.9
    return matched / len(stock)


def _measure_fidelity(scenes: int) -> dict[str, float]:
    """Box mIoU and automatic-mask recall on the bundled model: stock, then fast."""
    import tempfile
    from unittest import mock

    import torch

    import samkit
    from samkit import evaluation

    out: dict[str, float] = {}
    # Fidelity on the bundled model: the stock path, then the fast one.
    with tempfile.TemporaryDirectory() as home, mock.patch.dict("os.environ", SAMKIT_HOME=home):
        plain = samkit.load_sam("shapes", device="cpu")
        quick = samkit.load_sam("shapes", device="cpu", fast=True)
        with torch.inference_mode():
            stock_report = evaluation.evaluate(plain, range(scenes))
            with mock.patch.object(
                evaluation, "SamAutomaticMaskGenerator", samkit.FastMaskGenerator
            ):
                fast_report = evaluation.evaluate(quick, range(scenes))
    out["shapes_box_miou_stock"] = stock_report.box_miou
    out["shapes_box_miou_fast"] = fast_report.box_miou
    out["shapes_amg_recall_stock"] = stock_report.amg_recall
    out["shapes_amg_recall_fast"] = fast_report.amg_recall
    print(json.dumps(out), file=sys.stderr, flush=True)  # progress

    return out


def _load_vit_b_pair(out: dict[str, float]) -> tuple[Any, Any]:
    """A random vit_b loaded stock and fast (timed into ``out``, first and second load)."""
    import tempfile

    import torch
    from segment_anything import sam_model_registry

    import samkit

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        checkpoint = Path(tmp) / "vit_b_random.pt"
        torch.save(sam_model_registry["vit_b"]().state_dict(), checkpoint)
        start = time.perf_counter()
        stock = samkit.load_sam("vit_b", checkpoint=checkpoint, device="cpu")
        out["load_stock_s"] = time.perf_counter() - start
        start = time.perf_counter()
        samkit.load_sam("vit_b", checkpoint=checkpoint, device="cpu", fast=True)
        out["load_fast_first_s"] = time.perf_counter() - start
        start = time.perf_counter()
        fast = samkit.load_sam("vit_b", checkpoint=checkpoint, device="cpu", fast=True)
        out["load_fast_second_s"] = time.perf_counter() - start
        print(json.dumps(out), file=sys.stderr, flush=True)  # progress
    return stock, fast


def measure_fast(repeat: int, amg_side: int, scenes: int) -> dict[str, float]:
    """Stock against the fast path, side by side in this one process."""

    import torch
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor

    import samkit
    from samkit.fast import cpu_threads

    torch.set_num_threads(cpu_threads())
    out: dict[str, float] = {}
    out.update(_measure_fidelity(scenes))
    scene = samkit.shapes.make_scene(0, 480, 640)
    stock, fast = _load_vit_b_pair(out)
    ps, pf = SamPredictor(stock), SamPredictor(fast)
    box = scene.xyxy[0]
    with torch.inference_mode():
        ts, tf = [], []
        for _ in range(max(1, repeat // 10)):  # interleaved: both see the same load
            ts.append(_median_ms(lambda: ps.set_image(scene.image), 1))
            tf.append(_median_ms(lambda: pf.set_image(scene.image), 1))
        out["embed_stock_s"] = min(ts) / 1000
        out["embed_fast_s"] = min(tf) / 1000
        out["embed_rel_error"] = float((pf.features - ps.features).norm() / ps.features.norm())
        out["box_stock_ms"] = _median_ms(lambda: ps.predict(box=box), repeat)
        out["box_fast_ms"] = _median_ms(lambda: pf.predict(box=box), repeat)
        ious = []
        for each in scene.xyxy:  # every object of the scene, not only the timed one
            ms, _, _ = ps.predict(box=each, multimask_output=False)
            mf, _, _ = pf.predict(box=each, multimask_output=False)
            ious.append(float(samkit.masks.mask_iou(mf[0], ms[0])))
        out["box_mask_iou"] = sum(ious) / len(ious)
        out["box_mask_iou_min"] = min(ious)
        out["box_prompts"] = len(ious)
        info = fast.image_encoder.fast_info
        out["fast_precision"] = float(PRECISIONS.index(info.precision))  # numbers only
        out["fast_gate_iou"] = info.mask_iou if info.mask_iou is not None else float("nan")
        print(json.dumps(out), file=sys.stderr, flush=True)  # progress
        start = time.perf_counter()
        amg_stock = SamAutomaticMaskGenerator(stock, points_per_side=amg_side).generate(scene.image)
        out["amg_stock_s"] = time.perf_counter() - start
        print(json.dumps(out), file=sys.stderr, flush=True)  # progress
    start = time.perf_counter()
    amg_fast = samkit.FastMaskGenerator(fast, points_per_side=amg_side).generate(scene.image)
    out["amg_fast_s"] = time.perf_counter() - start
    out["amg_side"] = amg_side
    out["amg_masks_stock"] = len(amg_stock)
    out["amg_masks_fast"] = len(amg_fast)
    out["amg_recall_of_stock"] = _match_recall(amg_stock, amg_fast)
    out["threads"] = cpu_threads()
    return out


#: The fast encoder's precisions, as numbered in the measurements.
PRECISIONS = ("f32", "bf16", "int8", "f16")


def print_fast(r: dict[str, float]) -> None:
    """The fast-path table, Markdown."""
    side = int(r["amg_side"])
    print(
        "Fast path (vit_b, random weights, 1024 input, 480x640 image, CPU, "
        f"{int(r['threads'])} threads)"
    )
    print()
    print("| what | stock | fast | ratio / fidelity |")
    print("|---|---|---|---|")
    print(
        f"| image embedding (set_image) | {r['embed_stock_s']:.2f} s | {r['embed_fast_s']:.2f} s"
        f" | {r['embed_stock_s'] / r['embed_fast_s']:.2f}x, relative error "
        f"{r['embed_rel_error']:.1e} |"
    )
    print(
        f"| box prompt (predict) | {r['box_stock_ms']:.1f} ms | {r['box_fast_ms']:.1f} ms"
        f" | {r['box_stock_ms'] / r['box_fast_ms']:.2f}x, mask IoU mean {r['box_mask_iou']:.4f},"
        f" lowest {r['box_mask_iou_min']:.4f} ({int(r['box_prompts'])} boxes) |"
    )
    gate = r["fast_gate_iou"]
    precision = PRECISIONS[int(r["fast_precision"])]
    trial = f"{precision} trial: mean mask IoU {gate:.4f}, held-out images" if gate == gate else ""
    print(f"| encoder precision | f32 | {precision} | {trial} |")
    print(
        f"| automatic masks {side}x{side} points | {r['amg_stock_s']:.1f} s"
        f" ({int(r['amg_masks_stock'])} masks) | {r['amg_fast_s']:.1f} s"
        f" ({int(r['amg_masks_fast'])} masks) | {r['amg_stock_s'] / r['amg_fast_s']:.2f}x,"
        f" stock masks matched at IoU>=0.9: {r['amg_recall_of_stock']:.3f} |"
    )
    print(
        f"| load | {r['load_stock_s']:.1f} s | first {r['load_fast_first_s']:.1f} s,"
        f" second {r['load_fast_second_s']:.1f} s | conversion once, then the cache |"
    )
    print(
        f"| shapes: box mIoU | {r['shapes_box_miou_stock']:.4f} | {r['shapes_box_miou_fast']:.4f}"
        f" | difference {r['shapes_box_miou_fast'] - r['shapes_box_miou_stock']:+.4f} |"
    )
    print(
        f"| shapes: automatic-mask recall | {r['shapes_amg_recall_stock']:.3f}"
        f" | {r['shapes_amg_recall_fast']:.3f} | difference "
        f"{r['shapes_amg_recall_fast'] - r['shapes_amg_recall_stock']:+.3f} |"
    )


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


def _child(kind: str, repeat: int, extra: tuple[str, ...] = ()) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.bench", "--child", kind, "--repeat", str(repeat), *extra],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
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
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--only", choices=["models", "fast"], default=None)
    parser.add_argument("--amg-side", type=int, default=32, help="fast table: AMG points per side")
    parser.add_argument("--scenes", type=int, default=20, help="fast table: shapes scenes")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeat = 5 if args.quick else args.repeat
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
    if args.only == "fast":
        print_fast(
            _child("fast", repeat, ("--amg-side", str(args.amg_side), "--scenes", str(args.scenes)))
        )
        return 0

    print_models(repeat)
    if args.only != "models":
        print()
        extra = ("--amg-side", str(args.amg_side), "--scenes", str(args.scenes))
        print_fast(_child("fast", repeat, extra))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
