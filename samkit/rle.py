"""COCO run-length encoding (RLE) of masks: encoding, and decoding that checks its input.

A mask of any size becomes a short string (``{"size": [H, W], "counts": "..."}``) that
COCO-style tools read (pycocotools, CVAT, Label Studio, FiftyOne). Encoding is
pycocotools'; a string is decoded only after its run lengths were checked to describe
exactly ``H * W`` pixels, so a corrupt or cut-off file is refused with a message, never
decoded into a wrong mask or an allocation of any size it declares.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image
from pycocotools import mask as coco_mask

from samkit.masks import stack_masks

__all__ = [
    "MAX_TOTAL_PIXELS",
    "check_rle",
    "decode_rles",
    "masks_of",
    "masks_to_rle",
    "rle_runs",
    "rle_to_masks",
]


def masks_of(detections_or_masks: Any) -> npt.NDArray[np.bool_]:
    """Masks `(N, H, W)` of detections or of an array, validated."""
    if isinstance(detections_or_masks, sv.Detections | np.ndarray):
        masks = stack_masks(detections_or_masks)
    else:
        raise ValueError(
            "expected sv.Detections with masks or a bool array of shape (N, H, W), "
            f"but got {type(detections_or_masks).__name__}"
        )
    if masks.ndim != 3 or (len(masks) and 0 in masks.shape[1:]):
        raise ValueError(f"masks must have shape (N, H, W) with H, W > 0, but got {masks.shape}")
    return masks


def masks_to_rle(masks: npt.NDArray[Any]) -> list[dict[str, Any]]:
    """Encode masks as COCO RLE with ``pycocotools.mask.encode``.

    Args:
        masks: A bool (or 0/1 integer) array of shape `(N, H, W)`.

    Returns:
        N dicts ``{"size": [H, W], "counts": "<compressed RLE string>"}``, JSON-ready.

    Raises:
        ValueError: If ``masks`` is not an `(N, H, W)` array of masks.

    Example:
        ```pycon
        >>> import numpy as np, samkit
        >>> samkit.rle.masks_to_rle(np.ones((1, 2, 3), bool))
        [{'size': [2, 3], 'counts': '06'}]

        ```
    """
    checked = masks_of(masks)
    if len(checked) == 0:
        return []
    fortran = np.asfortranarray(checked.transpose(1, 2, 0).astype(np.uint8))
    encoded = coco_mask.encode(fortran)
    return [
        {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
        for rle in encoded
    ]


def rle_to_masks(rles: Sequence[dict[str, Any]]) -> npt.NDArray[np.bool_]:
    """Decode COCO RLE dicts (as :func:`masks_to_rle` gives) with ``pycocotools``.

    Every entry is checked before anything is allocated: its ``counts`` must decode to
    run lengths that add up to exactly ``H * W`` pixels (a file that declares a size its
    counts do not describe is refused, whatever size it declares), and one mask may not
    be larger than Pillow's decompression-bomb limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``).

    Args:
        rles: Dicts with ``size`` ``[H, W]`` and ``counts`` (a compressed RLE string).
            All must have the same size.

    Returns:
        A bool array of shape `(N, H, W)`; `(0, 0, 0)` for an empty list.

    Raises:
        ValueError: If an entry is not an RLE dict, its counts are corrupt, cut off or
            describe another number of pixels than its size, the sizes differ, or a
            mask is too large. The message names the entry (``RLE i``).
    """
    if not isinstance(rles, list | tuple):
        raise ValueError(f"rles must be a list of RLE dicts, but got {type(rles).__name__}")
    return decode_rles(list(rles), [f"RLE {i}" for i in range(len(rles))])


def max_mask_pixels() -> int:
    """The largest mask :func:`rle_to_masks` decodes, in pixels: Pillow's image limit."""
    limit = Image.MAX_IMAGE_PIXELS
    return 2 * int(limit) if limit else 2**62


def rle_runs(counts: str) -> npt.NDArray[np.int64]:
    """Decode a compressed COCO RLE string into its run lengths, without pycocotools.

    pycocotools writes each run as a little-endian sequence of 5-bit groups, one
    character each (``chr(48 + group)``, bit 0x20 set on every character but a run's
    last, bit 0x10 of the last the sign), and from the third run on as the difference to
    the run two places before. Its decoder trusts the string; this one checks it.

    Raises:
        ValueError: If a character is outside the code, the string ends inside a run,
            a run is too long to be a pixel count, or a run is negative.
    """
    if not counts:
        return np.zeros(0, dtype=np.int64)
    try:
        raw = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError:
        raise ValueError("it holds characters that are not ASCII") from None
    bad = np.flatnonzero((raw < 0) | (raw > 63))
    if bad.size:
        raise ValueError(
            f"character {counts[bad[0]]!r} at position {int(bad[0])} is not part of the code"
        )
    last = (raw & 0x20) == 0
    if not last[-1]:
        raise ValueError("it ends in the middle of a run (the string is cut off)")
    ends = np.flatnonzero(last)
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts + 1
    if lengths.max() > 12:
        raise ValueError("a run is too long to be a pixel count")
    group = np.repeat(np.arange(len(ends)), lengths)
    position = np.arange(len(raw)) - np.repeat(starts, lengths)
    values = np.zeros(len(ends), dtype=np.int64)
    np.add.at(values, group, (raw & 0x1F) << (5 * position))
    negative = (raw[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * lengths[negative])
    runs = values.copy()
    # From the third run on, each is stored as the difference to the run two before.
    for parity in (1, 2):
        runs[parity::2] = np.cumsum(values[parity::2])
    if (runs < 0).any():
        raise ValueError(f"run {int(np.flatnonzero(runs < 0)[0])} is negative")
    return runs


def check_rle(rle: Any, where: str) -> tuple[int, int]:
    """Check one RLE dict completely (size, counts, their agreement); return its size."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"{where} must be a dict with keys 'size' and 'counts', got {rle!r}")
    size = rle["size"]
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise ValueError(f"{where} key 'size' must be [H, W] with H, W > 0, but got {size!r}")
    counts = rle["counts"]
    if not isinstance(counts, str):
        raise ValueError(
            f"{where} key 'counts' must be a compressed RLE string, but got {type(counts).__name__}"
        )
    height, width = size
    pixels = height * width
    try:
        runs = rle_runs(counts)
    except ValueError as error:
        raise ValueError(f"{where}: cannot decode RLE counts: {error}") from None
    described = int(runs.sum())
    if described != pixels:
        raise ValueError(
            f"{where}: cannot decode RLE counts: they describe {described:,} pixels, but "
            f"its size {list(size)} has {pixels:,} (the file is corrupt or cut off)"
        )
    if pixels > max_mask_pixels():
        raise ValueError(
            f"{where} declares a {height}x{width} mask ({pixels:,} pixels), more than the "
            f"{max_mask_pixels():,} pixels samkit decodes (the limit Pillow sets for images)"
        )
    return height, width


#: The most pixels :func:`rle_to_masks` and ``samkit.load_coco_rle`` decode in one call,
#: all masks together (a few kilobytes of RLE can declare many large masks).
MAX_TOTAL_PIXELS = 1 << 30


def decode_rles(rles: list[Any], names: list[str]) -> npt.NDArray[np.bool_]:
    """Check every RLE (named in messages by ``names``), then decode them all."""
    if not rles:
        return np.zeros((0, 0, 0), dtype=bool)
    sizes = [check_rle(rle, name) for rle, name in zip(rles, names, strict=True)]
    if len(set(sizes)) != 1:
        raise ValueError(f"all RLEs must have the same size, but got {sorted(set(sizes))}")
    total = len(rles) * sizes[0][0] * sizes[0][1]
    if total > MAX_TOTAL_PIXELS:
        raise ValueError(
            f"{len(rles)} masks of {sizes[0][0]}x{sizes[0][1]} are {total:,} pixels in all, "
            f"more than the {MAX_TOTAL_PIXELS:,} samkit decodes at once (each is checked "
            "alone too): decode them in smaller groups"
        )
    coded = [{"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")} for rle in rles]
    try:
        with warnings.catch_warnings():
            # pycocotools' compiled decoder predates NumPy 2's ``copy`` keyword; NumPy
            # copies instead and says so. The result is the same.
            warnings.filterwarnings(
                "ignore", message=".*__array__ implementation doesn't accept a copy keyword"
            )
            decoded = coco_mask.decode(coded)
    except Exception as error:  # pycocotools raises bare Exceptions on corrupt counts
        raise ValueError(f"cannot decode RLE counts: {error}") from None
    return np.ascontiguousarray(decoded.transpose(2, 0, 1).astype(bool))
