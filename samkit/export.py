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
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image

from samkit import checks, files
from samkit.images import open_image
from samkit.rle import decode_rles, masks_of, masks_to_rle, rle_to_masks

__all__ = [
    "COCO_RLE_FORMAT",
    "load_coco_rle",
    "load_mask_png",
    "masks_to_rle",
    "rle_to_masks",
    "save_coco_rle",
    "save_mask_pngs",
]

#: The value of ``"format"`` in the JSON files :func:`save_coco_rle` writes.
COCO_RLE_FORMAT = "samkit-coco-rle-1"

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
    masks = masks_of(detections)
    target = checks.file_path(path, suffix=".json")
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
            "score": _json_number(None if confidence is None else confidence[i]),
        }
        if names is not None:
            annotation["class_name"] = str(names[i])
        annotations.append(annotation)
    # No masks at all (an image where nothing was found) may not say how large it is.
    height, width = (int(v) if v else None for v in masks.shape[1:])
    content = {
        "format": COCO_RLE_FORMAT,
        "image": {"file_name": image_name, "height": height, "width": width},
        "annotations": annotations,
    }
    data = json.dumps(content, indent=1, allow_nan=False).encode("utf-8")
    return files.atomic_write(target, data)


def _json_number(value: Any) -> float | None:
    """A score as JSON can hold it: ``None`` (``null``) for no score, NaN or infinity."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


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
    target = checks.file_path(path, suffix=".json")
    if not target.is_file():
        raise FileNotFoundError(f"COCO RLE file not found: {target}")
    content = files.read_json(target)  # UTF-8 or UTF-16/32 with a mark; no deep nesting
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
    names_of = []
    for i, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or "segmentation" not in annotation:
            raise ValueError(f"{target.name} annotation {i} is missing key 'segmentation'")
        known = annotation.get("id")
        names_of.append(
            f"{target.name} annotation {i}" + (f" (id {known!r})" if known is not None else "")
        )
    masks = decode_rles([a["segmentation"] for a in annotations], names_of)
    if not annotations:
        height, width = (
            value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
            for value in (image.get("height"), image.get("width"))
        )
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
    order. They form one set, replaced as a whole: the new set is written (and synced to
    disk) in a hidden folder inside ``folder`` first; only when all of it is written are
    the files of an earlier set with the same prefix (``<prefix>_<digits>.png``) moved
    aside, the new files renamed into place and the old ones deleted. So ``folder``
    never holds a mix of an old and a new set (a full disk or an error midway leaves
    the old set as it was), and a smaller new set leaves no stale masks behind. Other
    files in ``folder`` are not touched. Files get the permissions the umask gives.

    Args:
        detections: ``sv.Detections`` with masks, or a bool array `(N, H, W)`.
        folder: Where to write; created (with its parents) when missing.
        prefix: The start of every file name: letters, digits, ``_``, ``-`` and ``.``.

    Returns:
        The paths written, one per mask (empty for no masks: an earlier set with the
        same prefix is removed then too).

    Raises:
        ValueError: If there are no masks to read, ``prefix`` is not a plain file-name
            start, or ``folder`` is not a path or is an existing file.
        OSError: If the files cannot be written (full disk, read-only file system, no
            permission); the message says which, and ``folder`` is left as it was.

    Example:
        ```python
        paths = samkit.save_mask_pngs(detections, "build/masks", prefix="coffee")
        ```
    """
    masks = masks_of(detections)
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
    set_name = re.compile(re.escape(prefix) + r"_\d{3,}\.png")
    staging: Path | None = None
    backup: Path | None = None
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        old = sorted(p.name for p in target.iterdir() if set_name.fullmatch(p.name))
        staging = Path(tempfile.mkdtemp(dir=target, prefix=f".{prefix}.new-"))
        names = []
        for i, mask in enumerate(masks):
            buffer = io.BytesIO()
            Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, format="PNG")
            names.append(f"{prefix}_{i:03d}.png")
            with open(staging / names[-1], "wb") as file:  # the hidden folder is the temporary
                files.write_bytes(file, buffer.getvalue())
                file.flush()
                os.fsync(file.fileno())
        backup = Path(tempfile.mkdtemp(dir=target, prefix=f".{prefix}.old-"))
        for name in old:
            os.replace(target / name, backup / name)
            moved_old.append(name)
        for name in names:
            os.replace(staging / name, target / name)
            moved_new.append(name)
    except BaseException as error:
        _undo_swap(target, staging, backup, moved_old, moved_new)
        if isinstance(error, OSError):
            raise files.write_error(error, target) from error
        raise
    for folder_left in (staging, backup):
        shutil.rmtree(folder_left, ignore_errors=True)
    return [target / name for name in names]


def _undo_swap(
    target: Path,
    staging: Path | None,
    backup: Path | None,
    moved_old: list[str],
    moved_new: list[str],
) -> None:
    """Put an earlier PNG set back as it was after a failed :func:`save_mask_pngs`."""
    for name in moved_new:
        (target / name).unlink(missing_ok=True)
    if backup is not None:
        for name in moved_old:
            try:
                os.replace(backup / name, target / name)
            except OSError:
                pass  # Best effort: the old file stays in the hidden folder.
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    if backup is not None:
        try:
            backup.rmdir()  # Only when every old file went back.
        except OSError:
            pass


def load_mask_png(path: str | os.PathLike[str]) -> npt.NDArray[np.bool_]:
    """Read a PNG mask (as :func:`save_mask_pngs` writes) into a bool array.

    Two kinds of mask file are read: black-and-white (any pixel above 127 in grayscale
    is part of the mask, as :func:`save_mask_pngs` writes them), and label masks that
    hold only the values 0 and 1 (grayscale or palette indices; the 1s are the mask).

    Args:
        path: The PNG file.

    Returns:
        A bool array of shape `(H, W)`.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not a PNG image, is larger than Pillow's
            decompression-bomb limit, or holds dark values other than 0 and 1 only (a
            label image with several labels, which no threshold turns into one mask).
    """
    target = checks.file_path(path, suffix=".png")
    if not target.is_file():
        raise FileNotFoundError(f"PNG mask not found: {target}")
    try:
        with open_image(target, str(target)) as picture:
            if picture.mode in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                values = np.asarray(picture)
                if values.size and values.max() == 1 and values.min() >= 0:
                    return values == 1
            gray = np.asarray(picture.convert("L"))
    except OSError as error:
        raise ValueError(f"cannot read {target} as a PNG image: {error}") from None
    if gray.size and 0 < gray.max() <= 127:
        raise ValueError(
            f"{target} holds pixel values from {int(gray.min())} to {int(gray.max())}, none "
            "above 127: it is neither a black-and-white mask (0 and 255) nor a 0/1 label "
            "mask. A label image with several labels holds one mask per value: select "
            "one, e.g. np.asarray(PIL.Image.open(path)) == label"
        )
    return gray > 127
