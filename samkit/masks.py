"""Working with many masks: order them by area, compare them, drop near-duplicates.

SAM expects ambiguity, so one object often comes back as several nearly identical
masks; :func:`remove_duplicates` is the post-processing step that keeps one of them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, cast, overload

import numpy as np
import numpy.typing as npt
import supervision as sv

#: What :func:`remove_duplicates` can keep out of a group of near-duplicates.
KEEP_CHOICES: tuple[str, ...] = ("smallest", "largest", "best")


def _bool_masks(masks: npt.NDArray[Any], name: str) -> npt.NDArray[np.bool_]:
    """Return ``masks`` as bool, accepting bool or 0/1 integer arrays only."""
    if masks.dtype != np.bool_ and not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"{name} must be boolean (or integer 0/1), but got dtype {masks.dtype}")
    return masks.astype(bool, copy=False)


def stack_masks(
    masks_or_detections: sv.Detections | npt.NDArray[Any] | Sequence[npt.NDArray[Any]],
) -> npt.NDArray[np.bool_]:
    """Return the masks of detections, an array or a list as one bool array.

    Args:
        masks_or_detections: ``sv.Detections`` with masks, an array of shape
            `(N, H, W)` (or one `(H, W)` mask), or a list of `(H, W)` arrays of one size
            (e.g. the ``segmentation`` of every ``generate`` result).

    Returns:
        A bool numpy array of shape `(N, H, W)`; `(0, 0, 0)` for an empty list or for
        empty detections without masks.

    Raises:
        ValueError: If the detections have no masks, an array is not 2D/3D, the masks
            differ in size, or they are not boolean or integer.

    Example:
        ```pycon
        >>> import numpy as np, samkit
        >>> samkit.masks.stack_masks([np.ones((2, 3), bool), np.zeros((2, 3), bool)]).shape
        (2, 2, 3)

        ```
    """
    if isinstance(masks_or_detections, sv.Detections):
        if masks_or_detections.mask is None and len(masks_or_detections) == 0:
            return np.zeros((0, 0, 0), dtype=bool)
        if masks_or_detections.mask is None:
            raise ValueError(
                "detections have no masks (detections.mask is None); "
                "build them with amg_to_detections or prediction_to_detections"
            )
        return _bool_masks(np.asarray(masks_or_detections.mask), "detections.mask")
    if isinstance(masks_or_detections, np.ndarray):
        array = masks_or_detections
        if array.ndim == 2:
            array = array[np.newaxis]
        if array.ndim != 3:
            raise ValueError(f"masks must have shape (N, H, W), but got shape {array.shape}")
        return _bool_masks(array, "masks")
    if isinstance(masks_or_detections, (list, tuple)):
        if not masks_or_detections:
            return np.zeros((0, 0, 0), dtype=bool)
        shapes = {np.shape(mask) for mask in masks_or_detections}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(
                "masks must be 2D arrays of one shape (H, W), but got shapes "
                + ", ".join(str(np.shape(mask)) for mask in masks_or_detections)
            )
        return _bool_masks(np.stack([np.asarray(m) for m in masks_or_detections]), "masks")
    raise ValueError(
        "expected sv.Detections, an (N, H, W) array or a list of (H, W) masks, "
        f"but got {type(masks_or_detections).__name__}"
    )


def _areas(masks_or_detections: sv.Detections | npt.NDArray[Any] | Sequence[Any]) -> Any:
    """Pixel area of every mask (box area for detections without masks)."""
    if isinstance(masks_or_detections, sv.Detections):
        return masks_or_detections.area
    return stack_masks(masks_or_detections).sum(axis=(1, 2))


@overload
def sort_by_area(detections_or_masks: sv.Detections, descending: bool = ...) -> sv.Detections: ...
@overload
def sort_by_area(
    detections_or_masks: npt.NDArray[Any], descending: bool = ...
) -> npt.NDArray[np.bool_]: ...
@overload
def sort_by_area(
    detections_or_masks: Sequence[npt.NDArray[Any]], descending: bool = ...
) -> list[npt.NDArray[Any]]: ...
def sort_by_area(
    detections_or_masks: sv.Detections | npt.NDArray[Any] | Sequence[npt.NDArray[Any]],
    descending: bool = True,
) -> sv.Detections | npt.NDArray[np.bool_] | list[npt.NDArray[Any]]:
    """Order masks by their area in pixels; ties keep their original order.

    Args:
        detections_or_masks: ``sv.Detections`` (by mask area, or box area when they have
            no masks), an array of shape `(N, H, W)`, or a list of `(H, W)` masks.
        descending: ``True`` for the largest first (as ``sv.Detections.from_sam``),
            ``False`` for the smallest first.

    Returns:
        The same kind of thing, reordered: ``sv.Detections`` (every field and ``data``
        row follows its mask), a bool `(N, H, W)` array, or a list of the given masks.

    Raises:
        ValueError: As :func:`stack_masks`, for anything that is not masks.

    Example:
        ```pycon
        >>> import numpy as np, samkit
        >>> small, big = np.zeros((2, 4, 4), bool), np.ones((4, 4), bool)
        >>> small[0, 0, 0] = True
        >>> [int(m.sum()) for m in samkit.masks.sort_by_area([small[0], big], descending=True)]
        [16, 1]

        ```
    """
    areas = np.asarray(_areas(detections_or_masks))
    order = np.argsort(-areas if descending else areas, kind="stable")
    if isinstance(detections_or_masks, sv.Detections):
        return cast(sv.Detections, detections_or_masks[order])
    if isinstance(detections_or_masks, np.ndarray):
        return stack_masks(detections_or_masks)[order]
    return [detections_or_masks[i] for i in order]


def mask_iou(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> Any:
    """Intersection over union of masks (``sv.mask_iou_batch`` underneath).

    Args:
        a: One mask `(H, W)` or many `(N, H, W)`, boolean (or integer 0/1).
        b: One mask `(H, W)` or many `(M, H, W)`, of the same `(H, W)` as ``a``.

    Returns:
        A ``float`` when both are single masks, else a float array of shape `(N, M)`
        (a single mask counts as N or M = 1). Two empty masks have IoU ``0.0``.

    Raises:
        ValueError: If a mask is not 2D/3D, not boolean or integer, or the sizes differ.

    Example:
        ```pycon
        >>> import numpy as np, samkit
        >>> a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
        >>> a[:2, :2] = True; b[:2, :] = True
        >>> samkit.masks.mask_iou(a, b)
        0.5

        ```
    """
    arrays = []
    for name, mask in (("a", a), ("b", b)):
        array = np.asarray(mask)
        if array.ndim not in (2, 3):
            raise ValueError(
                f"mask {name} must have shape (H, W) or (N, H, W), but got shape {array.shape}"
            )
        arrays.append(_bool_masks(array, f"mask {name}"))
    if arrays[0].shape[-2:] != arrays[1].shape[-2:]:
        raise ValueError(
            "masks a and b must have the same (H, W), but got "
            f"{arrays[0].shape[-2:]} and {arrays[1].shape[-2:]}"
        )
    first, second = (m if m.ndim == 3 else m[np.newaxis] for m in arrays)
    ious = sv.mask_iou_batch(first, second)
    if arrays[0].ndim == 2 and arrays[1].ndim == 2:
        return float(ious[0, 0])
    return ious


def remove_duplicates(
    detections: sv.Detections,
    iou_threshold: float = 0.8,
    keep: Literal["smallest", "largest", "best"] = "smallest",
) -> sv.Detections:
    """Drop masks that describe the same object as another, keeping one of each group.

    Two masks are duplicates when their IoU is above ``iou_threshold``. This is
    supervision's mask NMS (``sv.mask_non_max_suppression``) with the ranking chosen by
    ``keep`` instead of always the score.

    Args:
        detections: ``sv.Detections`` with masks (from :func:`amg_to_detections` or
            :func:`prediction_to_detections`).
        iou_threshold: Masks with an IoU above this (in `[0, 1]`) are duplicates.
        keep: Which mask of a group survives: ``"smallest"`` (the seed's choice: the
            part, not the whole), ``"largest"``, or ``"best"`` (highest ``confidence``).

    Returns:
        The detections that survive, in their original order.

    Raises:
        ValueError: If the detections have no masks, ``keep`` is unknown,
            ``iou_threshold`` is outside `[0, 1]`, or ``keep="best"`` without confidence.

    Example:
        ```python
        detections = samkit.amg_to_detections(mask_generator.generate(image))
        unique = samkit.remove_duplicates(detections, iou_threshold=0.8, keep="smallest")
        ```
    """
    if not isinstance(detections, sv.Detections):
        raise ValueError(f"detections must be sv.Detections, but got {type(detections).__name__}")
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be one of {', '.join(KEEP_CHOICES)}, but got {keep!r}")
    is_number = isinstance(iou_threshold, numbers.Real) and not isinstance(iou_threshold, bool)
    if not is_number or not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must be a number in [0, 1], but got {iou_threshold!r}")
    masks = stack_masks(detections)
    if keep == "best" and detections.confidence is None:
        raise ValueError('keep="best" needs detections.confidence, but it is None')
    if len(detections) == 0:
        return detections
    if keep == "best":
        rank = np.asarray(detections.confidence, dtype=np.float64)
    else:
        area = masks.sum(axis=(1, 2)).astype(np.float64)
        rank = -area if keep == "smallest" else area
    predictions = np.column_stack([np.asarray(detections.xyxy, dtype=np.float64), rank])
    survivors = sv.mask_non_max_suppression(predictions, masks, iou_threshold=iou_threshold)
    return cast(sv.Detections, detections[survivors])


def grid_shape(count: int, max_cols: int = 8) -> tuple[int, int]:
    """Rows and columns of a grid that holds ``count`` images, at most ``max_cols`` wide.

    Args:
        count: How many images (``>= 0``).
        max_cols: The widest the grid may be (``>= 1``).

    Returns:
        ``(rows, cols)`` with ``cols = min(count, max_cols)`` and just enough rows;
        ``(0, 0)`` for no images.

    Raises:
        ValueError: If ``count`` is not an integer ``>= 0`` or ``max_cols`` not ``>= 1``.

    Example:
        ```pycon
        >>> import samkit
        >>> samkit.masks.grid_shape(7), samkit.masks.grid_shape(100), samkit.masks.grid_shape(0)
        ((1, 7), (13, 8), (0, 0))

        ```
    """
    for name, value, low in (("count", count, 0), ("max_cols", max_cols, 1)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, but got {value!r}")
    if count == 0:
        return (0, 0)
    cols = min(int(count), int(max_cols))
    return (math.ceil(int(count) / cols), cols)


def deepest_point(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """The pixel farthest from a mask's border: a click that surely lands inside it.

    Args:
        mask: One bool mask of shape `(H, W)`.

    Returns:
        Its `(x, y)` pixel, a float32 numpy array of shape `(2,)`.

    Example:
        >>> import numpy as np
        >>> mask = np.zeros((5, 7), dtype=bool)
        >>> mask[1:4, 2:5] = True
        >>> deepest_point(mask).tolist()
        [3.0, 2.0]
    """
    import cv2

    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return np.array([x, y], dtype=np.float32)
