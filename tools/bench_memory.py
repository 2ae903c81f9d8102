"""Peak memory of the automatic mask generator on a large photo, against stock.

``make bench`` runs ``python -m tools.bench_memory``: with the bundled ``shapes`` model
and its default automatic settings (``samkit.amg_settings("shapes")``), on generated
scenes (photo-sized, shapes the model knows), it prints

- the peak resident memory of ``generate`` above the loaded model and the image, for
  ``samkit.generator.MaskGenerator`` and ``samkit.FastMaskGenerator`` on a
  4000×3000 photo (target: at most 2.5 GB), and for them and stock
  ``SamAutomaticMaskGenerator`` on a 1-megapixel photo (stock is never run on the large
  one: it needs over 12 GB there), with the ratio against stock;
- how many of stock's masks samkit's generator finds again (IoU >= 0.9) on that photo.

Each measurement runs in a fresh Python process: the model is loaded, one small image
is generated (warm-up), the photo is made, then the kernel's peak-RSS mark is reset
(``/proc/self/clear_refs``) and ``generate`` runs; the peak minus the resident size
just before is printed. Linux only.

    python -m tools.bench_memory [--large 3000x4000] [--small 866x1155]
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: The generators one measurement can run.
GENERATORS = ("samkit", "fast", "stock")

#: The target this bench checks: peak of ``generate`` above the loaded model.
TARGET_BYTES = 2.5e9


def _status_bytes(key: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process, in bytes (from ``/proc/self/status``)."""
    text = Path("/proc/self/status").read_text()
    found = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"/proc/self/status has no {key}: this measurement needs Linux")
    return int(found.group(1)) * 1024


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of this process to its current RSS."""
    Path("/proc/self/clear_refs").write_text("5")
    if _status_bytes("VmHWM") > _status_bytes("VmRSS") * 1.05 + 2**20:
        raise RuntimeError("writing 5 to /proc/self/clear_refs did not reset VmHWM")


def make_generator(name: str, sam: Any, settings: dict[str, Any]) -> Any:
    """One of :data:`GENERATORS`, built with ``settings``."""
    from segment_anything import SamAutomaticMaskGenerator

    from samkit.fast.amg import FastMaskGenerator
    from samkit.generator import MaskGenerator

    classes = {
        "samkit": MaskGenerator,
        "fast": FastMaskGenerator,
        "stock": SamAutomaticMaskGenerator,
    }
    return classes[name](sam, **settings)


def measure(
    name: str, height: int, width: int, seed: int, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Peak RSS of one ``generate`` above the resident size before it (this process).

    Args:
        name: One of :data:`GENERATORS`.
        height: The photo's height.
        width: The photo's width.
        seed: The scene's seed (``samkit.shapes.make_scene``).
        overrides: Settings on top of ``samkit.amg_settings("shapes")``.

    Returns:
        ``{"generator", "height", "width", "peak_bytes", "masks", "seconds"}``.
    """
    import torch

    from samkit.model import load_sam
    from samkit.settings import amg_settings
    from samkit.shapes import make_scene

    sam = load_sam("shapes", device="cpu")
    generator = make_generator(name, sam, amg_settings("shapes", **overrides))
    with torch.inference_mode():
        generator.generate(make_scene(seed, 96, 128).image)  # warm-up: lazy loads, threads
    image = make_scene(seed, height, width).image
    gc.collect()
    _reset_peak()
    before = _status_bytes("VmRSS")
    started = time.perf_counter()
    with torch.inference_mode():
        records = generator.generate(image)
    seconds = time.perf_counter() - started
    peak = _status_bytes("VmHWM") - before
    return {
        "generator": name,
        "height": height,
        "width": width,
        "peak_bytes": peak,
        "masks": len(records),
        "seconds": seconds,
    }


def measure_in_child(
    name: str, height: int, width: int, seed: int = 3, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (so that no earlier peak counts)."""
    command = [
        sys.executable,
        "-m",
        "tools.bench_memory",
        "--child",
        json.dumps([name, height, width, seed, overrides or {}]),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the {name} measurement failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def matched_fraction(stock: list[dict[str, Any]], ours: list[dict[str, Any]]) -> float:
    """The fraction of stock's masks that one of ours matches at IoU >= 0.9.

    Args:
        stock: Records of ``SamAutomaticMaskGenerator`` (``binary_mask``).
        ours: Records of the generator compared (``binary_mask``).

    Returns:
        In ``[0, 1]``; 1.0 when stock has no mask.
    """
    if not stock:
        return 1.0
    matched = 0
    for record in stock:
        mask = record["segmentation"]
        for other in ours:
            union = np.logical_or(mask, other["segmentation"]).sum()
            inter = np.logical_and(mask, other["segmentation"]).sum()
            if union == 0 or inter / union >= 0.9:
                matched += 1
                break
    return matched / len(stock)


def _fidelity(height: int, width: int, seed: int) -> tuple[float, int, int]:
    """Stock against samkit's generator on one photo: matched fraction and counts."""
    from samkit.model import load_sam
    from samkit.settings import amg_settings
    from samkit.shapes import make_scene

    sam = load_sam("shapes", device="cpu")
    image = make_scene(seed, height, width).image
    stock = make_generator("stock", sam, amg_settings("shapes")).generate(image)
    ours = make_generator("samkit", sam, amg_settings("shapes")).generate(image)
    return matched_fraction(stock, ours), len(stock), len(ours)


def _size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def main(argv: list[str] | None = None) -> int:
    """Print the table; return 1 when the large photo's peak misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=_size, default=(3000, 4000), help="HxW, default 3000x4000")
    parser.add_argument("--small", type=_size, default=(866, 1155), help="HxW, about 1 MP")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return 0
    gib = 1024**3
    print("| photo | generator | masks | peak of generate above the model | ratio to stock | s |")
    print("|---|---|---|---|---|---|")
    small = {name: measure_in_child(name, *args.small) for name in GENERATORS}
    for name in GENERATORS:
        row = small[name]
        ratio = row["peak_bytes"] / max(small["stock"]["peak_bytes"], 1)
        print(
            f"| {args.small[1]}x{args.small[0]} | {name} | {row['masks']} | "
            f"{row['peak_bytes'] / gib:.2f} GiB | {ratio:.3f} | {row['seconds']:.1f} |"
        )
    worst = 0
    for name in ("samkit", "fast"):
        row = measure_in_child(name, *args.large)
        worst = max(worst, row["peak_bytes"])
        print(
            f"| {args.large[1]}x{args.large[0]} | {name} | {row['masks']} | "
            f"{row['peak_bytes'] / gib:.2f} GiB | stock not run (over 12 GB) | "
            f"{row['seconds']:.1f} |"
        )
    fraction, n_stock, n_ours = _fidelity(args.small[0], args.small[1], 3)
    print(
        f"\nsame masks as stock on {args.small[1]}x{args.small[0]}: {fraction:.1%} of "
        f"stock's {n_stock} masks matched at IoU >= 0.9 (samkit: {n_ours} masks)"
    )
    verdict = "within" if worst <= TARGET_BYTES else "OVER"
    print(f"large photo: peak {worst / 1e9:.2f} GB, {verdict} the 2.5 GB target")
    return 0 if worst <= TARGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
