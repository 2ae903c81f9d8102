"""A COCO instance file and its images, checked for fine-tuning, and split by image.

:func:`load_dataset` reads a COCO file (masks as compressed or uncompressed RLE, or as
polygons; ``samkit segment``'s ``annotations.json`` corrected by hand works too) and
checks everything before any training: every image is there and readable, every
annotation has a mask of its image's size, and there are enough images for a
validation split. Masks are kept as compressed RLE and decoded when needed.

Example:
    ```python
    from samkit.finetune.data import load_dataset, split_images
    dataset = load_dataset("labels/annotations.json", "labels/images")
    train, val = split_images(len(dataset.images), val_fraction=0.2, seed=0)
    ```
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as coco_mask

from samkit.files import sha256_file
from samkit.images import load_image
from samkit.rle import rle_to_masks

#: The fewest images with masks that a training and a validation split can be made of.
MIN_IMAGES = 2


@dataclass(frozen=True)
class LabeledImage:
    """One image of a data set and its masks.

    Attributes:
        file_name: The name the COCO file gives it (relative to the images folder).
        path: The file.
        sha256: The sha256 of the file's bytes (the key of its cached embedding).
        height: Image height in pixels (after EXIF rotation, as ``load_image`` reads it).
        width: Image width in pixels.
        rles: One compressed COCO RLE dict per object (``{"size": [H, W], "counts": str}``).
        annotation_ids: The COCO id of each object's annotation.
    """

    file_name: str
    path: Path
    sha256: str
    height: int
    width: int
    rles: tuple[dict[str, Any], ...]
    annotation_ids: tuple[Any, ...]

    def masks(self) -> npt.NDArray[np.bool_]:
        """The objects' masks, a bool array of shape `(N, H, W)`."""
        return rle_to_masks(list(self.rles))

    def boxes(self) -> npt.NDArray[np.float32]:
        """The objects' boxes from their masks, `(N, 4)` xyxy (max inclusive), float32."""
        out = np.zeros((len(self.rles), 4), dtype=np.float32)
        for i, rle in enumerate(self.rles):
            x, y, w, h = coco_mask.toBbox({"size": rle["size"], "counts": rle["counts"].encode()})
            out[i] = (x, y, x + w - 1, y + h - 1)
        return out


@dataclass(frozen=True)
class Dataset:
    """A checked data set.

    Attributes:
        images: The images that have at least one mask, in the file's order.
        digest: A sha256 of the annotation file and every image's content.
        annotations: The COCO file it was read from.
        unlabeled: File names of images the COCO file lists without any annotation
            (left out).
    """

    images: tuple[LabeledImage, ...]
    digest: str
    annotations: Path
    unlabeled: tuple[str, ...] = ()

    @property
    def objects(self) -> int:
        """How many masks the data set holds."""
        return sum(len(image.rles) for image in self.images)


def _read_coco(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} must be a COCO JSON file, but it is not JSON: {error}") from None
    if (
        not isinstance(content, dict)
        or not isinstance(content.get("images"), list)
        or not isinstance(content.get("annotations"), list)
    ):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(
            f"{path} must be a COCO instance file with 'images' and 'annotations' lists, "
            f"but got {found}"
        )
    return content


def _to_rle(segmentation: Any, height: int, width: int, where: str) -> dict[str, Any]:
    """One annotation's segmentation as compressed RLE of ``(height, width)``, checked."""
    if not segmentation:
        raise ValueError(
            f"{where} has no mask (its 'segmentation' is missing or empty): fine-tuning "
            "needs a mask for every annotation, not only a box"
        )
    if isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        size = segmentation.get("size")
        if size != [height, width]:
            raise ValueError(f"{where}: its mask is {size}, but the image is {[height, width]}")
        encoded = coco_mask.frPyObjects(segmentation, height, width)
        segmentation = {"size": [height, width], "counts": encoded["counts"].decode("ascii")}
    elif isinstance(segmentation, list):
        polygons = [p for p in segmentation if isinstance(p, list) and len(p) >= 6]
        if len(polygons) != len(segmentation):
            raise ValueError(
                f"{where}: a polygon must be a list of at least 3 points [x1, y1, x2, y2, ...]"
            )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*__array__ implementation")
            merged = coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))
        segmentation = {"size": [height, width], "counts": merged["counts"].decode("ascii")}
    mask = rle_to_masks([segmentation])  # checks the RLE completely
    if mask.shape[1:] != (height, width):
        raise ValueError(
            f"{where}: its mask is {mask.shape[1]}x{mask.shape[2]} (height x width), but the "
            f"image is {height}x{width}"
        )
    if not mask.any():
        raise ValueError(f"{where} has an empty mask (no pixel is set)")
    return {"size": [height, width], "counts": str(segmentation["counts"])}


def _check_image(entry: Any, folder: Path, index: int) -> tuple[Path, int, int]:
    """An image entry's file, read once to check it; returns the path, height and width."""
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
        raise ValueError(f"images[{index}] must be a dict with a 'file_name' string, got {entry!r}")
    path = folder / entry["file_name"]
    if not path.is_file():
        raise FileNotFoundError(f"image {entry['file_name']!r} not found: no file {path}")
    try:
        height, width = load_image(path).shape[:2]
    except ValueError as error:
        raise ValueError(f"image {entry['file_name']!r} cannot be read: {error}") from None
    declared = (entry.get("height"), entry.get("width"))
    if declared != (None, None) and declared != (height, width):
        raise ValueError(
            f"image {entry['file_name']!r} is {height}x{width} (height x width), but the COCO "
            f"file says {declared[0]}x{declared[1]}"
        )
    return path, height, width


def _group(annotations: list[Any], ids: set[Any], source: Path) -> dict[Any, list[Any]]:
    """Annotations by image id; one that names no listed image is an error."""
    grouped: dict[Any, list[Any]] = {}
    for index, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or annotation.get("image_id") not in ids:
            found = annotation.get("image_id") if isinstance(annotation, dict) else annotation
            raise ValueError(
                f"{source.name} annotation {index} must have the 'image_id' of an entry of "
                f"'images', but got {found!r}"
            )
        grouped.setdefault(annotation["image_id"], []).append(annotation)
    return grouped


def load_dataset(
    annotations: str | os.PathLike[str], images: str | os.PathLike[str] | None = None
) -> Dataset:
    """Read and check a COCO instance file and its images.

    Args:
        annotations: The COCO JSON file: ``images`` (``id``, ``file_name``, optionally
            ``height``/``width``) and ``annotations`` (``image_id`` and ``segmentation``:
            RLE or polygons).
        images: The folder that the ``file_name`` entries are relative to (default: the
            annotation file's folder).

    Returns:
        The checked :class:`Dataset`; images without annotations are left out.

    Raises:
        FileNotFoundError: If the annotation file, the folder or an image is missing.
        ValueError: If the file is not COCO, an image cannot be read, a mask is missing,
            empty or not its image's size, or fewer than ``MIN_IMAGES`` images have masks.
    """
    source = Path(annotations).expanduser()
    content = _read_coco(source)
    folder = source.parent if images is None else Path(images).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"images folder not found: {folder}")
    entries = content["images"]
    ids = {entry.get("id") for entry in entries if isinstance(entry, dict)}
    grouped = _group(content["annotations"], ids, source)
    labeled: list[LabeledImage] = []
    unlabeled: list[str] = []
    for index, entry in enumerate(entries):
        path, height, width = _check_image(entry, folder, index)
        found = grouped.get(entry.get("id"), [])
        if not found:
            unlabeled.append(entry["file_name"])
            continue
        rles = tuple(
            _to_rle(
                a.get("segmentation"),
                height,
                width,
                f"annotation {a.get('id')!r} of image {entry['file_name']!r}",
            )
            for a in found
        )
        ids_of = tuple(a.get("id") for a in found)
        labeled.append(
            LabeledImage(entry["file_name"], path, sha256_file(path), height, width, rles, ids_of)
        )
    if len(labeled) < MIN_IMAGES:
        raise ValueError(
            f"fine-tuning needs at least {MIN_IMAGES} images with masks (some to train on, "
            f"at least one to validate on), but {source.name} has {len(labeled)}"
        )
    digest = hashlib.sha256(source.read_bytes())
    for image in labeled:
        digest.update(f"{image.file_name}\0{image.sha256}\0".encode())
    return Dataset(tuple(labeled), digest.hexdigest(), source, tuple(unlabeled))


def split_images(count: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split ``count`` images into training and validation, by image, from a seed.

    Args:
        count: How many images there are.
        val_fraction: The share to validate on, in (0, 1); at least one image, and at
            least one left to train on.
        seed: The seed of the split.

    Returns:
        The training and the validation indexes, each sorted.

    Raises:
        ValueError: If ``val_fraction`` is not in (0, 1) or ``count`` is below 2.

    Example:
        >>> split_images(5, 0.2, seed=0)
        ([0, 2, 3, 4], [1])
    """
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, int | float)
        or not 0 < val_fraction < 1
    ):
        raise ValueError(f"val_fraction must be a number in (0, 1), but got {val_fraction!r}")
    if count < MIN_IMAGES:
        raise ValueError(f"a validation split needs at least {MIN_IMAGES} images, but got {count}")
    val_count = min(count - 1, max(1, math.floor(count * val_fraction + 0.5)))
    order = np.random.default_rng([seed, 1]).permutation(count)
    return sorted(int(i) for i in order[val_count:]), sorted(int(i) for i in order[:val_count])
