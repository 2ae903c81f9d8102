"""The fast-path table of ``make bench``: stock segment-anything against the fast path.

Stock and ``load_sam(..., fast=True)`` with ``FastMaskGenerator`` side by side in one
process, on the same ``vit_b`` weights (random, seeded, saved to a temporary checkpoint so
that the first load converts and the second hits the cache), and the fidelity on the
bundled ``shapes`` model. ``tools.bench`` runs it once on the CPU as it is and once with
its instruction set capped to AVX2 (``SAMKIT_MAX_CPU_ISA=avx2``), each in a child process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench_timing import median_ms as _median_ms


def match_recall(stock: list[dict[str, Any]], ours: list[dict[str, Any]]) -> float:
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


def _float32_ceiling() -> dict[str, float]:
    """How fast this CPU multiplies float32 matrices, and the embedding's work.

    The ``vit_b`` encoder's floating-point operations are counted on the meta device
    (nothing is computed); the speed is the best of five products of the shape of its
    MLP (4096x768 by 768x3072) on the bench's threads. Their quotient is about the
    shortest a float32 embedding can take here: no float32 encoder beats stock by more
    than stock's time over it.
    """
    import torch
    from segment_anything import sam_model_registry
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        encoder = sam_model_registry["vit_b"]().image_encoder
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        encoder(torch.empty(1, 3, 1024, 1024, device="meta"))
    a, b = torch.randn(4096, 768), torch.randn(768, 3072)
    torch.mm(a, b)  # warm-up
    seconds = min(_median_ms(lambda: torch.mm(a, b), 1) for _ in range(5)) / 1000
    return {
        "embed_gflop": counter.get_total_flops() / 1e9,
        "matmul_gflops": 2 * 4096 * 768 * 3072 / seconds / 1e9,
    }


def measure_fast(repeat: int, amg_side: int, scenes: int) -> dict[str, Any]:
    """Stock against the fast path, side by side in this one process."""

    import torch
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor

    import samkit
    from samkit.fast.cpu import cpu_summary, cpu_threads

    torch.set_num_threads(cpu_threads())
    out: dict[str, Any] = {}
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
        out.update(_float32_ceiling())
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
    out["amg_recall_of_stock"] = match_recall(amg_stock, amg_fast)
    out["threads"] = cpu_threads()
    out["cpu"] = cpu_summary()
    return out


#: The fast encoder's precisions, as numbered in the measurements.
PRECISIONS = ("f32", "bf16", "int8", "f16")


def print_fast(r: dict[str, Any]) -> None:
    """The fast-path table, Markdown, under the CPU's model and flags."""
    side = int(r["amg_side"])
    print(
        "Fast path (vit_b, random weights, 1024 input, 480x640 image, CPU, "
        f"{int(r['threads'])} threads)"
    )
    print(f"CPU: {r['cpu']}")
    print()
    print("| what | stock | fast | ratio / fidelity |")
    print("|---|---|---|---|")
    print(
        f"| image embedding (set_image) | {r['embed_stock_s']:.2f} s | {r['embed_fast_s']:.2f} s"
        f" | {r['embed_stock_s'] / r['embed_fast_s']:.2f}x, relative error "
        f"{r['embed_rel_error']:.1e} |"
    )
    floor = r["embed_gflop"] / r["matmul_gflops"]
    print(
        f"| float32 ceiling | | {floor:.2f} s | {r['embed_gflop']:.0f} GFLOP at this CPU's float32"
        f" matrix speed ({r['matmul_gflops']:.0f} GFLOP/s): at most"
        f" {r['embed_stock_s'] / floor:.2f}x stock without fewer bits |"
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
