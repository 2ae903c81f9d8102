"""Masks in the formats other tools read: polygons, YOLO segmentation labels, cut-outs.

Every conversion goes through supervision: ``sv.mask_to_polygons`` and
``sv.polygon_to_mask`` for polygons, and supervision's YOLO reader and writer
(``detections_to_yolo_annotations``, ``yolo_annotations_to_detections``) for YOLO
segmentation labels, with no simplification of the contours, so that what is written
reads back into the same masks. Files are written to a temporary name and renamed when
complete (:mod:`samkit.files`).

- :func:`masks_to_polygons` / :func:`polygons_to_masks`: each mask as the ``(K, 2)``
  pixel polygons of its outlines (labelling tools such as CVAT or Label Studio take
  these), and back.
- :func:`masks_to_yolo_lines`, :func:`save_yolo_labels`, :func:`read_yolo_labels`:
  a YOLO segmentation ``.txt`` file (``class x1 y1 x2 y2 ...``, coordinates divided by
  the image's width and height), one line per connected piece of a mask.
- :func:`save_cutout`: the image where the mask is, transparent elsewhere, as a PNG.

Example:
    ```python
    from samkit import formats

    polygons = formats.masks_to_polygons(detections)      # one list of (K, 2) arrays per mask
    formats.save_yolo_labels(detections, "labels/cat.txt")
    formats.save_cutout(image, detections.mask[0], "cat.png")
    ```
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image
from supervision.dataset.formats.yolo import (
    detections_to_yolo_annotations,
    object_to_yolo,
    yolo_annotations_to_detections,
)

from samkit import files
from samkit.masks import stack_masks

__all__ = [
    "masks_to_polygons",
    "masks_to_yolo_lines",
    "polygons_to_masks",
    "read_yolo_labels",
    "save_cutout",
    "save_yolo_labels",
]


def _check_shape(image_shape: object) -> tuple[int, int]:
    """``image_shape`` as ``(H, W)`` (a third channel entry is dropped), or raise."""
    if (
        not isinstance(image_shape, Sequence)
        or len(image_shape) not in (2, 3)
        or not all(isinstance(v, int | np.integer) and v > 0 for v in image_shape[:2])
    ):
        raise ValueError(f"image_shape must be (H, W) with H, W > 0, but got {image_shape!r}")
    return int(image_shape[0]), int(image_shape[1])


def _check_file(path: object, suffix: str) -> Path:
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise ValueError(f"path must be a file path, but got {path!r}")
    target = Path(path)
    if target.suffix.lower() != suffix:
        raise ValueError(f"path must end in {suffix}, but got {target.name!r}")
    return target


def masks_to_polygons(
    masks: sv.Detections | npt.NDArray[Any],
) -> list[list[npt.NDArray[np.int32]]]:
    """The outline polygons of every mask, in pixels, through ``sv.mask_to_polygons``.

    Args:
        masks: ``sv.Detections`` with masks, or masks of shape `(N, H, W)` (or one
            `(H, W)` mask), bool or 0/1.

    Returns:
        One list per mask with one int32 array of shape `(K, 2)` (``x, y`` of each
        vertex) per outline, as ``sv.mask_to_polygons`` finds them (a piece of the mask,
        or a hole in it); an empty list for an empty mask.

    Raises:
        ValueError: If ``masks`` holds no masks of the right shape.

    Example:
        ```pycon
        >>> import numpy as np
        >>> from samkit.formats import masks_to_polygons
        >>> mask = np.zeros((10, 10), bool); mask[2:6, 3:8] = True
        >>> masks_to_polygons(mask)[0][0].tolist()
        [[3, 2], [3, 5], [7, 5], [7, 2]]

        ```
    """
    return [sv.mask_to_polygons(mask) for mask in stack_masks(masks)]


def polygons_to_masks(
    polygons: Sequence[Sequence[npt.NDArray[Any]]], image_shape: tuple[int, ...]
) -> npt.NDArray[np.bool_]:
    """Fill polygons back into masks: the inverse of :func:`masks_to_polygons`.

    Args:
        polygons: One list of `(K, 2)` pixel polygons per mask (what
            :func:`masks_to_polygons` returns).
        image_shape: The image's ``(H, W)`` (or ``(H, W, C)``).

    Returns:
        A bool array of shape `(N, H, W)`: each mask the union of its filled polygons.
        A hole comes back filled (its outline is filled like any other): for masks
        with holes, YOLO labels (:func:`save_yolo_labels`) or COCO RLE keep them.

    Raises:
        ValueError: If ``image_shape`` is not a size, or a polygon is not `(K, 2)`.
    """
    height, width = _check_shape(image_shape)
    masks = np.zeros((len(polygons), height, width), dtype=bool)
    for row, outlines in enumerate(polygons):
        for k, polygon in enumerate(outlines):
            points = np.asarray(polygon)
            if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
                raise ValueError(
                    f"polygon {k} of mask {row} must have shape (K, 2) with K >= 3, "
                    f"but got shape {points.shape}"
                )
            masks[row] |= sv.polygon_to_mask(
                np.round(points).astype(np.int32), resolution_wh=(width, height)
            ).astype(bool)
    return masks


def _class_ids(detections: sv.Detections | None, count: int, class_ids: Any) -> npt.NDArray[Any]:
    if class_ids is None:
        if detections is not None and detections.class_id is not None:
            return np.asarray(detections.class_id, dtype=int)
        return np.zeros(count, dtype=int)
    ids = np.asarray(class_ids)
    if ids.ndim == 0:
        ids = np.full(count, ids)
    if ids.shape != (count,) or not np.issubdtype(ids.dtype, np.integer) or (ids < 0).any():
        raise ValueError(
            f"class_ids must be one whole number from 0 up, or one per mask ({count}), "
            f"but got {class_ids!r}"
        )
    return ids.astype(int)


def masks_to_yolo_lines(
    masks: sv.Detections | npt.NDArray[Any], class_ids: int | Sequence[int] | None = None
) -> list[str]:
    """YOLO segmentation label lines for masks, through supervision's YOLO writer.

    Args:
        masks: ``sv.Detections`` with masks, or masks of shape `(N, H, W)`.
        class_ids: The class of every mask (one number for all); default: the
            detections' ``class_id``, else 0.

    Returns:
        One ``"class x1 y1 x2 y2 ..."`` line per connected piece of every mask
        (coordinates divided by the image's width and height, 5 decimals; a hole is
        joined to its outline by a seam, or, where supervision finds no seam inside a
        ragged mask, filled); a mask with no outline is written as its box.

    Raises:
        ValueError: If there are no masks of the right shape, or ``class_ids`` does not
            give one whole number per mask.
    """
    stacked = stack_masks(masks)
    detections = masks if isinstance(masks, sv.Detections) else None
    ids = _class_ids(detections, len(stacked), class_ids)
    if len(stacked) == 0:
        return []
    boxes = sv.mask_to_xyxy(stacked).astype(np.float32)
    lines: list[str] = []
    for row in range(len(stacked)):
        one = sv.Detections(
            xyxy=boxes[row : row + 1], mask=stacked[row : row + 1], class_id=ids[row : row + 1]
        )
        try:
            lines += detections_to_yolo_annotations(
                one, image_shape=stacked.shape[1:], approximation_percentage=0.0
            )
        except ValueError:
            # supervision found no seam inside the mask to join a hole to its outline
            # (ragged masks): the outlines alone, holes filled
            lines += outline_lines(stacked[row], int(ids[row]))
    return lines


def outline_lines(mask: npt.NDArray[np.bool_], class_id: int) -> list[str]:
    """YOLO lines of a mask's outer outlines only (its holes filled), one per piece.

    Args:
        mask: One bool mask of shape `(H, W)`.
        class_id: The class written first on every line.

    Returns:
        One ``"class x1 y1 ..."`` line per outer outline of at least 3 points.
    """
    contours, _ = cv2.findContours(
        mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    return [
        object_to_yolo(np.zeros(4), class_id, mask.shape, polygon=contour[:, 0, :])
        for contour in contours
        if len(contour) >= 3
    ]


def save_yolo_labels(
    masks: sv.Detections | npt.NDArray[Any],
    path: str | os.PathLike[str],
    class_ids: int | Sequence[int] | None = None,
) -> Path:
    """Write a YOLO segmentation label file for one image (atomically).

    Args:
        masks: ``sv.Detections`` with masks, or masks of shape `(N, H, W)`.
        path: The ``.txt`` file (YOLO's layout puts it in ``labels/``, named as the
            image); its folder must exist. An existing file is replaced.
        class_ids: As :func:`masks_to_yolo_lines`.

    Returns:
        The path written.

    Raises:
        ValueError: As :func:`masks_to_yolo_lines`, or if ``path`` does not end in ``.txt``.
    """
    target = _check_file(path, ".txt")
    lines = masks_to_yolo_lines(masks, class_ids=class_ids)
    return files.atomic_write(target, "".join(f"{line}\n" for line in lines))


def read_yolo_labels(path: str | os.PathLike[str], image_shape: tuple[int, ...]) -> sv.Detections:
    """Read a YOLO segmentation label file into ``sv.Detections`` with masks.

    Args:
        path: A ``.txt`` label file (polygon lines, or box lines, which become box masks).
        image_shape: The ``(H, W)`` (or ``(H, W, C)``) of the image it labels.

    Returns:
        One detection per line: ``xyxy`` in pixels, ``class_id``, and a bool ``mask``
        of shape `(N, H, W)` filled from the polygon.

    Raises:
        ValueError: If ``image_shape`` is not a size or a line is not a YOLO label.
        FileNotFoundError: If the file does not exist.
    """
    height, width = _check_shape(image_shape)
    target = _check_file(path, ".txt")
    if not target.is_file():
        raise FileNotFoundError(f"no YOLO label file at {target}")
    lines = [line for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
    detections = yolo_annotations_to_detections(
        lines, resolution_wh=(width, height), with_masks=True
    )
    if len(detections) == 0:
        detections.mask = np.zeros((0, height, width), dtype=bool)
    return detections


def save_cutout(
    image: npt.NDArray[np.uint8],
    mask: npt.NDArray[Any],
    path: str | os.PathLike[str],
    crop: bool = True,
) -> Path:
    """Save the masked part of an image as a PNG with a transparent background.

    Args:
        image: The RGB image, uint8 of shape `(H, W, 3)`.
        mask: One mask of the image's size, shape `(H, W)` (or `(1, H, W)`).
        path: The ``.png`` file; its folder must exist. An existing file is replaced.
        crop: Cut the picture down to the mask's box (else it keeps the image's size).
            An empty mask has no box: it gives a wholly transparent image of full size.

    Returns:
        The path written: an RGBA PNG, opaque where the mask is, transparent elsewhere.

    Raises:
        ValueError: If ``image`` is not RGB uint8, ``mask`` is not one mask of its size,
            or ``path`` does not end in ``.png``.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image)
        raise ValueError(f"image must be an RGB uint8 array of shape (H, W, 3), but got {got}")
    if image.shape[2] != 3:
        raise ValueError(
            f"image must be an RGB uint8 array of shape (H, W, 3), but got shape {image.shape}"
        )
    stacked = stack_masks(mask)
    if len(stacked) != 1 or stacked.shape[1:] != image.shape[:2]:
        raise ValueError(
            f"mask must be one mask of the image's size {image.shape[:2]}, "
            f"but got shape {np.shape(mask)}"
        )
    target = _check_file(path, ".png")
    alpha = stacked[0]
    rgba = np.dstack([image, alpha.astype(np.uint8) * 255])
    if crop and alpha.any():
        x0, y0, x1, y1 = (int(v) for v in sv.mask_to_xyxy(stacked)[0])
        rgba = rgba[y0 : y1 + 1, x0 : x1 + 1]
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG")
    return files.atomic_write(target, buffer.getvalue())
