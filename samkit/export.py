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

import errno
import io
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image
from pycocotools import mask as coco_mask

from samkit import files
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
    return _decode_rles(list(rles), [f"RLE {i}" for i in range(len(rles))])


def _max_mask_pixels() -> int:
    """The largest mask :func:`rle_to_masks` decodes, in pixels: Pillow's image limit."""
    limit = Image.MAX_IMAGE_PIXELS
    return 2 * int(limit) if limit else 2**62


def _rle_runs(counts: str) -> npt.NDArray[np.int64]:
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


def _check_rle(rle: Any, where: str) -> tuple[int, int]:
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
        runs = _rle_runs(counts)
    except ValueError as error:
        raise ValueError(f"{where}: cannot decode RLE counts: {error}") from None
    described = int(runs.sum())
    if described != pixels:
        raise ValueError(
            f"{where}: cannot decode RLE counts: they describe {described:,} pixels, but "
            f"its size {list(size)} has {pixels:,} (the file is corrupt or cut off)"
        )
    if pixels > _max_mask_pixels():
        raise ValueError(
            f"{where} declares a {height}x{width} mask ({pixels:,} pixels), more than the "
            f"{_max_mask_pixels():,} pixels samkit decodes (the limit Pillow sets for images)"
        )
    return height, width


#: The most pixels :func:`rle_to_masks` and :func:`load_coco_rle` decode in one call,
#: all masks together (a few kilobytes of RLE can declare many large masks).
MAX_TOTAL_PIXELS = 1 << 30


def _decode_rles(rles: list[Any], names: list[str]) -> npt.NDArray[np.bool_]:
    """Check every RLE (named in messages by ``names``), then decode them all."""
    if not rles:
        return np.zeros((0, 0, 0), dtype=bool)
    sizes = [_check_rle(rle, name) for rle, name in zip(rles, names, strict=True)]
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


def _umask_mode() -> int:
    """The mode a new file gets here: ``0o666`` less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _write_file(file: IO[bytes], data: bytes) -> None:
    """Write one file's bytes (a separate function so tests can fill the disk)."""
    file.write(data)


def _write_error(error: OSError, path: Path) -> OSError:
    """Say what stopped a write, in words that point the right way; nothing was changed."""
    if error.errno == errno.ENOSPC:
        what = "the disk is full"
    elif error.errno == errno.EROFS:
        what = "the file system is read-only"
    elif error.errno in (errno.EACCES, errno.EPERM):
        what = "permission denied"
    else:
        what = error.strerror or str(error)
    named = type(error)(f"cannot write {path}: {what}; nothing was changed there")
    named.errno = error.errno
    return named


def _atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` into a temporary file beside ``path``, then rename it to ``path``.

    The file gets the permissions the umask gives a new file (``mkstemp``'s own are
    ``0600``), and its bytes reach the disk (``fsync``) before the rename.
    """
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder not found: {path.parent}")
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise _write_error(error, path) from error
    try:
        with os.fdopen(handle, "wb") as file:
            _write_file(file, data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, _umask_mode())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise _write_error(error, path) from error
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
    return _atomic_write(target, data)


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
    target = _check_path(path, ".json")
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
    masks = _decode_rles([a["segmentation"] for a in annotations], names_of)
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
            with open(staging / names[-1], "wb") as file:
                _write_file(file, buffer.getvalue())
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
            raise _write_error(error, target) from error
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
    target = _check_path(path, ".png")
    if not target.is_file():
        raise FileNotFoundError(f"PNG mask not found: {target}")
    from samkit.images import _open_image

    try:
        with _open_image(target, str(target)) as picture:
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
