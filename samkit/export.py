"""Save masks for other tools: COCO run-length encoding (JSON) and PNG masks.

COCO RLE is what COCO-style tools read (pycocotools, CVAT, Label Studio, FiftyOne): a
mask of any size becomes a short string. PNG masks (white object on black, one file per
mask) open in any image editor. Files are written to a temporary name beside the target
and renamed when complete, so an interrupted export never leaves half a file.

Example:
    ```python
    samkit.save_coco_rle(detections, "build/masks.json", image_name="coffee.png")
    samkit.save_mask_pngs(detections, "build/masks")
    restored = samkit.load_coco_rle("build/masks.json")
    ```
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image
from pycocotools import mask as coco_mask

from samkit.masks import stack_masks

#: The value of ``"format"`` in the JSON files :func:`save_coco_rle` writes.
COCO_RLE_FORMAT = "samkit-coco-rle-1"

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _masks_of(detections_or_masks: Any) -> npt.NDArray[np.bool_]:
    """Masks `(N, H, W)` of detections or of an array, validated."""
    if isinstance(detections_or_masks, sv.Detections | np.ndarray):
        masks = stack_masks(detections_or_masks)
    else:
        raise ValueError(
            "expected sv.Detections with masks or a bool array of shape (N, H, W), "
            f"but got {type(detections_or_masks).__name__}"
        )
    if masks.ndim != 3 or 0 in masks.shape[1:]:
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
        >>> samkit.export.masks_to_rle(np.ones((1, 2, 3), bool))
        [{'size': [2, 3], 'counts': '06'}]

        ```
    """
    checked = _masks_of(masks)
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

    Args:
        rles: Dicts with ``size`` ``[H, W]`` and ``counts`` (a compressed RLE string).
            All must have the same size.

    Returns:
        A bool array of shape `(N, H, W)`; `(0, 0, 0)` for an empty list.

    Raises:
        ValueError: If an entry is not an RLE dict, the sizes differ, or pycocotools
            cannot decode it.
    """
    if not isinstance(rles, list | tuple):
        raise ValueError(f"rles must be a list of RLE dicts, but got {type(rles).__name__}")
    if not rles:
        return np.zeros((0, 0, 0), dtype=bool)
    sizes = []
    for i, rle in enumerate(rles):
        if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
            raise ValueError(f"RLE {i} must be a dict with keys 'size' and 'counts', got {rle!r}")
        size = rle["size"]
        if (
            not isinstance(size, list | tuple)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
        ):
            raise ValueError(f"RLE {i} key 'size' must be [H, W] with H, W > 0, but got {size!r}")
        if not isinstance(rle["counts"], str):
            raise ValueError(
                f"RLE {i} key 'counts' must be a compressed RLE string, "
                f"but got {type(rle['counts']).__name__}"
            )
        sizes.append(tuple(size))
    if len(set(sizes)) != 1:
        raise ValueError(f"all RLEs must have the same size, but got {sorted(set(sizes))}")
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


def _atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` into a temporary file beside ``path``, then rename it to ``path``."""
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder not found: {path.parent}")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _check_path(path: object, suffix: str, name: str = "path") -> Path:
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise ValueError(f"{name} must be a file path, but got {path!r}")
    target = Path(path)
    if target.suffix.lower() != suffix:
        raise ValueError(f"{name} must end in {suffix}, but got {target.name!r}")
    return target


def save_coco_rle(
    detections: sv.Detections | npt.NDArray[Any],
    path: str | os.PathLike[str],
    image_name: str | None = None,
) -> Path:
    """Save masks as COCO RLE in a JSON file (atomically).

    The file holds ``{"format", "image": {"file_name", "height", "width"},
    "annotations": [...]}``; every annotation has COCO's ``segmentation`` (RLE),
    ``area``, ``bbox`` (``[x, y, w, h]``), and ``score`` (the detection's confidence, or
    ``null``) and ``class_name`` when the detections carry them.

    Args:
        detections: ``sv.Detections`` with masks, or a bool array `(N, H, W)`.
        path: The ``.json`` file to write; its folder must exist. An existing file is
            replaced.
        image_name: The image's file name, recorded as ``image.file_name``.

    Returns:
        The path written.

    Raises:
        ValueError: If there are no masks to read, ``path`` does not end in ``.json``,
            or ``image_name`` is not a string.
        FileNotFoundError: If the folder of ``path`` does not exist.

    Example:
        ```python
        samkit.save_coco_rle(detections, "masks.json", image_name="coffee.png")
        ```
    """
    masks = _masks_of(detections)
    target = _check_path(path, ".json")
    if image_name is not None and not isinstance(image_name, str):
        raise ValueError(f"image_name must be a string or None, but got {image_name!r}")
    confidence = detections.confidence if isinstance(detections, sv.Detections) else None
    names = detections.data.get("class_name") if isinstance(detections, sv.Detections) else None
    boxes = sv.mask_to_xyxy(masks) if len(masks) else np.zeros((0, 4))
    annotations = []
    for i, (rle, mask, box) in enumerate(zip(masks_to_rle(masks), masks, boxes, strict=True)):
        x0, y0, x1, y1 = (int(v) for v in box)
        area = int(mask.sum())
        annotation: dict[str, Any] = {
            "id": i,
            "segmentation": rle,
            "area": area,
            "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1] if area else [0, 0, 0, 0],
            "score": None if confidence is None else float(confidence[i]),
        }
        if names is not None:
            annotation["class_name"] = str(names[i])
        annotations.append(annotation)
    height, width = masks.shape[1:]
    content = {
        "format": COCO_RLE_FORMAT,
        "image": {"file_name": image_name, "height": int(height), "width": int(width)},
        "annotations": annotations,
    }
    data = json.dumps(content, indent=1).encode("utf-8")
    return _atomic_write(target, data)


def load_coco_rle(path: str | os.PathLike[str]) -> sv.Detections:
    """Read masks saved by :func:`save_coco_rle` back into ``sv.Detections``.

    Args:
        path: The JSON file.

    Returns:
        ``sv.Detections`` with the masks `(N, H, W)`, ``xyxy`` from the masks,
        ``confidence`` when every annotation has a score, and ``data["class_name"]``
        when every annotation has one.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not JSON written by :func:`save_coco_rle`.
    """
    target = _check_path(path, ".json")
    if not target.is_file():
        raise FileNotFoundError(f"COCO RLE file not found: {target}")
    try:
        content = json.loads(target.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{target} is not a JSON file: {error}") from None
    if not isinstance(content, dict) or content.get("format") != COCO_RLE_FORMAT:
        found = content.get("format") if isinstance(content, dict) else type(content).__name__
        raise ValueError(
            f"{target} must be written by samkit.save_coco_rle (format {COCO_RLE_FORMAT!r}), "
            f"but got format {found!r}"
        )
    annotations = content.get("annotations")
    image = content.get("image")
    if not isinstance(annotations, list) or not isinstance(image, dict):
        raise ValueError(f"{target} must hold an 'image' object and an 'annotations' list")
    for i, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or "segmentation" not in annotation:
            raise ValueError(f"{target.name} annotation {i} is missing key 'segmentation'")
    masks = rle_to_masks([a["segmentation"] for a in annotations])
    if not annotations:
        height, width = int(image.get("height", 0)), int(image.get("width", 0))
        masks = np.zeros((0, height, width), dtype=bool)
    scores = [a.get("score") for a in annotations]
    has_scores = bool(annotations) and all(
        isinstance(s, int | float) and math.isfinite(s) for s in scores
    )
    names = [a.get("class_name") for a in annotations]
    data: dict[str, Any] = {}
    if annotations and all(isinstance(n, str) for n in names):
        data["class_name"] = np.array(names, dtype=str)
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32).reshape(-1, 4),
        mask=masks,
        confidence=np.array(scores, dtype=np.float32) if has_scores else None,
        data=data,
    )


def save_mask_pngs(
    detections: sv.Detections | npt.NDArray[Any],
    folder: str | os.PathLike[str],
    prefix: str = "mask",
) -> list[Path]:
    """Save every mask as its own black-and-white PNG (object 255, background 0).

    Files are named ``<prefix>_000.png``, ``<prefix>_001.png``, ... in the detections'
    order; each is written atomically. Everything is checked before the first file is
    written.

    Args:
        detections: ``sv.Detections`` with masks, or a bool array `(N, H, W)`.
        folder: Where to write; created (with its parents) when missing.
        prefix: The start of every file name: letters, digits, ``_``, ``-`` and ``.``.

    Returns:
        The paths written, one per mask (empty for no masks).

    Raises:
        ValueError: If there are no masks to read, ``prefix`` is not a plain file-name
            start, or ``folder`` is not a path or is an existing file.

    Example:
        ```python
        paths = samkit.save_mask_pngs(detections, "build/masks", prefix="coffee")
        ```
    """
    masks = _masks_of(detections)
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ValueError(
            "prefix must start with a letter or digit and hold only letters, digits, "
            f"'_', '-' and '.', but got {prefix!r}"
        )
    if not isinstance(folder, str | os.PathLike) or not str(folder).strip():
        raise ValueError(f"folder must be a folder path, but got {folder!r}")
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise ValueError(f"folder must be a folder, but {target} is a file")
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for i, mask in enumerate(masks):
        buffer = io.BytesIO()
        Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
        path = target / f"{prefix}_{i:03d}.png"
        written.append(_atomic_write(path, buffer.getvalue()))
    return written


def load_mask_png(path: str | os.PathLike[str]) -> npt.NDArray[np.bool_]:
    """Read a PNG mask (as :func:`save_mask_pngs` writes) into a bool array.

    Args:
        path: The PNG file; any pixel above 127 (in grayscale) is part of the mask.

    Returns:
        A bool array of shape `(H, W)`.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not a PNG image.
    """
    target = _check_path(path, ".png")
    if not target.is_file():
        raise FileNotFoundError(f"PNG mask not found: {target}")
    try:
        with Image.open(target) as picture:
            gray = np.asarray(picture.convert("L"))
    except OSError as error:
        raise ValueError(f"cannot read {target} as a PNG image: {error}") from None
    return gray > 127
