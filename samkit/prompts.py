"""Prompts for SAM: boxes drawn in ``jupyter_bbox_widget`` and include/exclude clicks.

The widget speaks ``{"x", "y", "width", "height", "label"}`` dicts in image pixels;
``SamPredictor.predict`` wants ``box`` as ``[x_min, y_min, x_max, y_max]`` and points as
``point_coords`` ``(N, 2)`` with ``point_labels`` ``(N,)`` (1 include, 0 exclude).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from samkit import checks

#: The keys every widget box must carry (``label`` is optional and ignored here).
BBOX_KEYS: tuple[str, ...] = ("x", "y", "width", "height")

_KEYS_TEXT = ", ".join(BBOX_KEYS)

#: The largest magnitude a coordinate may have: SAM works in float32.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _number(value: Any, what: str) -> float:
    """Return ``value`` as a finite float32-sized float, or raise naming ``what``."""
    is_number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    try:
        number = float(value) if is_number else math.nan
    except OverflowError:  # an int too large for any float, e.g. 10**400
        number = math.inf if value > 0 else -math.inf
    if not is_number or math.isnan(number) or (math.isinf(number) and not isinstance(value, int)):
        raise ValueError(f"{what} must be a finite number, but got {value!r}")
    if not abs(number) <= _FLOAT32_MAX:
        raise ValueError(
            f"{what} must be a number within float32 range (about ±3.4e38), "
            f"but got {checks.short(value, 40)}"
        )
    return number


def _image_size(image_shape: Any) -> tuple[int, int]:
    """Validate ``image_shape`` ``(H, W)`` and return it as two ints."""
    if (
        isinstance(image_shape, (tuple, list))
        and len(image_shape) == 2
        and all(
            isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and int(v) > 0
            for v in image_shape
        )
    ):
        return int(image_shape[0]), int(image_shape[1])
    raise ValueError(
        "image_shape must be (H, W) with two positive integers, e.g. image.shape[:2], "
        f"but got {image_shape!r}"
    )


def clip_box(
    xyxy: Sequence[float], image_shape: tuple[int, int], where: str = "box"
) -> list[float]:
    """Clip one box to the image; refuse it only when no pixel of it is inside.

    The one rule for boxes past the edge, used by :func:`bboxes_to_xyxy` and the live
    widget (``samkit.LiveSegmenter``): a box that reaches past the image is clipped to
    ``0 <= x <= W``, ``0 <= y <= H``; a box wholly outside is refused, since SAM would
    still return a confident mask for it, of something else.

    Args:
        xyxy: ``[x_min, y_min, x_max, y_max]`` in pixels (finite numbers).
        image_shape: The image's ``(H, W)`` (``image.shape[:2]``).
        where: How the message names the box (``"box 0"``, ``"default box 1"``).

    Returns:
        The clipped ``[x_min, y_min, x_max, y_max]``, floats.

    Raises:
        ValueError: If ``image_shape`` is not two positive integers, or the box lies
            wholly outside the image: ``"box [x_min, y_min, x_max, y_max] = [...] lies
            outside the image of width W and height H: no pixel of it is inside"``.

    Example:
        ```pycon
        >>> import samkit
        >>> samkit.prompts.clip_box([-10, 5, 50, 500], (100, 200))
        [0.0, 5.0, 50.0, 100.0]

        ```
    """
    height, width = _image_size(image_shape)
    x_min, y_min, x_max, y_max = (float(v) for v in xyxy)
    if x_max <= 0 or y_max <= 0 or x_min >= width or y_min >= height:
        raise ValueError(
            f"{where} [x_min, y_min, x_max, y_max] = {[_plain_number(v) for v in xyxy]} lies "
            f"outside the image of width {width} and height {height}: no pixel of it is "
            "inside"
        )
    right, bottom = float(width), float(height)
    return [
        min(max(x_min, 0.0), right),
        min(max(y_min, 0.0), bottom),
        min(max(x_max, 0.0), right),
        min(max(y_max, 0.0), bottom),
    ]


def _bbox_row(bbox: Any, where: str) -> list[float]:
    """Validate one widget dict and return it as ``[x_min, y_min, x_max, y_max]``."""
    if not isinstance(bbox, Mapping):
        raise ValueError(
            f"{where} must be a dict with keys {_KEYS_TEXT}, but got {type(bbox).__name__}"
        )
    for key in BBOX_KEYS:
        if key not in bbox:
            raise ValueError(f"{where} is missing key '{key}'")
    x, y, width, height = (_number(bbox[key], f"{where} key '{key}'") for key in BBOX_KEYS)
    for key, size in (("width", width), ("height", height)):
        if size < 0:
            raise ValueError(f"{where} key '{key}' must be >= 0, but got {bbox[key]!r}")
    return [x, y, x + width, y + height]


def _bbox_list(bboxes: Any, name: str) -> list[Any]:
    """Return ``bboxes`` as a list of (unchecked) boxes, or raise if it is not a list."""
    if isinstance(bboxes, (list, tuple)):
        return list(bboxes)
    raise ValueError(
        f"{name} must be a list of dicts with keys {_KEYS_TEXT}, but got {type(bboxes).__name__}"
    )


def bboxes_to_xyxy(
    bboxes: Sequence[Mapping[str, Any]],
    default: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    image_shape: tuple[int, int] | None = None,
) -> npt.NDArray[np.float32]:
    """Convert ``BBoxWidget.bboxes`` to an array of ``[x_min, y_min, x_max, y_max]`` rows.

    Args:
        bboxes: The widget's ``bboxes``: a list of dicts with keys ``x``, ``y``,
            ``width``, ``height`` (and usually ``label``, which is ignored), in pixels.
        default: What to use when ``bboxes`` is empty (nothing drawn yet): one widget
            dict or a list of them. ``None`` gives an empty result.
        image_shape: The image's ``(H, W)`` (``image.shape[:2]``). When given, a box
            that reaches past the image is clipped to it (``0 <= x <= W``,
            ``0 <= y <= H``), and a box with no part inside the image is refused: SAM
            would still return a confident mask for it, of something else.

    Returns:
        A numpy array of shape `(N, 4)` and dtype float32, one xyxy row per box; shape
        `(0, 4)` when there are no boxes and no ``default``.

    Raises:
        ValueError: If ``bboxes`` (or ``default``) is not a list of dicts, or a box misses
            a key, has a negative width or height, or a value that is not a finite
            number within float32 range (``bool``, ``NaN``, ``1e39`` and ``10**400``
            included), or lies wholly outside ``image_shape``. The message names the box
            and the key.

    Example:
        ```pycon
        >>> import samkit
        >>> samkit.bboxes_to_xyxy([{"x": 10, "y": 20, "width": 30, "height": 40, "label": ""}])
        array([[10., 20., 40., 60.]], dtype=float32)
        >>> samkit.bboxes_to_xyxy([]).shape
        (0, 4)

        ```
    """
    size = None if image_shape is None else _image_size(image_shape)
    rows = [_bbox_row(bbox, f"box {i}") for i, bbox in enumerate(_bbox_list(bboxes, "bboxes"))]
    where = "box"
    if not rows and default is not None:
        defaults = [default] if isinstance(default, Mapping) else _bbox_list(default, "default")
        rows = [_bbox_row(bbox, f"default box {i}") for i, bbox in enumerate(defaults)]
        where = "default box"
    for i, row in enumerate(rows):
        if not all(abs(v) <= _FLOAT32_MAX for v in row):
            raise ValueError(f"{where} {i} reaches {row}, past float32 range (about ±3.4e38)")
        if size is not None:
            rows[i] = clip_box(row, size, f"{where} {i}")
    return np.array(rows, dtype=np.float32).reshape(-1, 4)


def bbox_to_sam_box(bbox: Mapping[str, Any]) -> npt.NDArray[np.float32]:
    """Convert one widget dict into the ``box`` argument of ``SamPredictor.predict``.

    Args:
        bbox: One widget dict with keys ``x``, ``y``, ``width``, ``height``.

    Returns:
        A numpy array of shape `(4,)`: ``[x_min, y_min, x_max, y_max]``, float32.

    Raises:
        ValueError: As :func:`bboxes_to_xyxy`, naming the box ``box 0``.

    Example:
        ```pycon
        >>> import samkit
        >>> samkit.prompts.bbox_to_sam_box({"x": 10, "y": 20, "width": 30, "height": 40})
        array([10., 20., 40., 60.], dtype=float32)

        ```
    """
    return bboxes_to_xyxy([bbox])[0]


def _plain_number(value: float) -> int | float:
    """Return ``value`` as an ``int`` when it is whole (as the widget draws), else a float."""
    return int(value) if float(value).is_integer() else float(value)


def _label_list(labels: Any, count: int) -> list[str]:
    """``labels`` of :func:`xyxy_to_bboxes` as one string per box, checked."""
    if labels is None or isinstance(labels, str):
        label_list = [labels or ""] * count
    elif isinstance(labels, (list, tuple, np.ndarray)):
        label_list = list(labels)
        for i, label in enumerate(label_list):
            if not isinstance(label, str):
                raise ValueError(
                    f"label {i} must be a string, but got {checks.short(label, 40)} "
                    f"({type(label).__name__})"
                )
        if len(label_list) != count:
            raise ValueError(
                f"labels must have one entry per box: {count} boxes, "
                f"but got {len(label_list)} labels"
            )
    else:
        raise ValueError(
            "labels must be None, a string, or a list of one string per box, "
            f"but got {checks.short(labels, 40)} ({type(labels).__name__})"
        )
    return label_list


def xyxy_to_bboxes(
    xyxy: npt.ArrayLike,
    labels: str | Sequence[str] | None = None,
) -> list[dict[str, int | float | str]]:
    """Convert xyxy boxes into widget dicts, e.g. to preset boxes in ``BBoxWidget``.

    Args:
        xyxy: Boxes as an array-like of shape `(N, 4)` (or one box of shape `(4,)`),
            each ``[x_min, y_min, x_max, y_max]`` in pixels.
        labels: The ``label`` of every box: ``None`` gives ``""``, a string labels all
            boxes, a list (or tuple) of strings gives one label per box.

    Returns:
        A list of N dicts with keys ``x``, ``y``, ``width``, ``height`` (plain ``int``
        where the value is whole, else ``float``) and ``label``.

    Raises:
        ValueError: If ``xyxy`` is not numeric with shape `(N, 4)`, holds a value that is
            not finite or outside float32 range, has ``x_max < x_min`` or
            ``y_max < y_min``, or ``labels`` is not a string or a list of one string per
            box.

    Example:
        ```pycon
        >>> import samkit
        >>> samkit.xyxy_to_bboxes([[10, 20, 40, 60]], labels=["cat"])
        [{'x': 10, 'y': 20, 'width': 30, 'height': 40, 'label': 'cat'}]

        ```
    """
    try:
        boxes = np.asarray(xyxy, dtype=np.float64)
    except OverflowError:
        raise ValueError(
            "xyxy must hold finite numbers within float32 range (about ±3.4e38), but holds "
            "an integer too large for any float"
        ) from None
    except (TypeError, ValueError):
        raise ValueError(
            f"xyxy must be numeric with shape (N, 4), but got {type(xyxy).__name__}"
        ) from None
    if boxes.shape == (4,):
        boxes = boxes.reshape(1, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"xyxy must have shape (N, 4), but got shape {boxes.shape}")
    label_list = _label_list(labels, len(boxes))
    result: list[dict[str, int | float | str]] = []
    for i, ((x_min, y_min, x_max, y_max), label) in enumerate(zip(boxes, label_list, strict=True)):
        if not np.isfinite([x_min, y_min, x_max, y_max]).all():
            raise ValueError(f"box {i} must hold finite numbers, but got {boxes[i].tolist()}")
        if not (np.abs([x_min, y_min, x_max, y_max]) <= _FLOAT32_MAX).all():
            raise ValueError(
                f"box {i} must hold numbers within float32 range (about ±3.4e38), "
                f"but got {boxes[i].tolist()}"
            )
        if x_max < x_min or y_max < y_min:
            raise ValueError(
                f"box {i} must have x_max >= x_min and y_max >= y_min, but got {boxes[i].tolist()}"
            )
        result.append(
            {
                "x": _plain_number(x_min),
                "y": _plain_number(y_min),
                "width": _plain_number(x_max - x_min),
                "height": _plain_number(y_max - y_min),
                "label": str(label),
            }
        )
    return result


def _points(points: Any, name: str) -> npt.NDArray[np.float32]:
    """Validate clicks given as ``(x, y)`` pairs and return them as float32 `(N, 2)`."""
    items: list[Any]
    if isinstance(points, np.ndarray):
        if points.size and (points.ndim != 2 or points.shape[1] != 2):
            raise ValueError(f"{name} must have shape (N, 2), but got shape {points.shape}")
        items = points.reshape(-1, 2).tolist()
    elif isinstance(points, (list, tuple)):
        items = list(points)
    else:
        raise ValueError(f"{name} must be a list of (x, y) pairs, but got {type(points).__name__}")
    rows: list[list[float]] = []
    for i, point in enumerate(items):
        pair = list(point) if isinstance(point, (list, tuple, np.ndarray)) else None
        if pair is None or len(pair) != 2:
            raise ValueError(f"{name} point {i} must be an (x, y) pair, but got {point!r}")
        rows.append(
            [
                _number(v, f"{name} point {i} coordinate '{axis}'")
                for v, axis in zip(pair, "xy", strict=True)
            ]
        )
    return np.array(rows, dtype=np.float32).reshape(-1, 2)


def points_to_prompt(
    include: Sequence[Sequence[float]] | npt.ArrayLike,
    exclude: Sequence[Sequence[float]] | npt.ArrayLike = (),
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Turn include and exclude clicks into ``point_coords`` and ``point_labels``.

    Args:
        include: Clicks on the object, as ``(x, y)`` pixel pairs (a list, or an array of
            shape `(N, 2)`).
        exclude: Clicks on what is *not* the object, in the same form.

    Returns:
        ``(point_coords, point_labels)``: a float32 array of shape `(N, 2)` (the include
        clicks first, then the exclude clicks) and an int32 array of shape `(N,)` with
        ``1`` for include and ``0`` for exclude, as ``SamPredictor.predict`` wants them.
        With no clicks at all the shapes are `(0, 2)` and `(0,)`; pass ``None`` to
        ``predict`` instead in that case.

    Raises:
        ValueError: If a click is not an ``(x, y)`` pair of finite numbers; the message
            names the list, the click's index and the coordinate.

    Example:
        ```pycon
        >>> import samkit
        >>> coords, labels = samkit.points_to_prompt([(10, 20)], exclude=[(5, 5)])
        >>> coords
        array([[10., 20.],
               [ 5.,  5.]], dtype=float32)
        >>> labels
        array([1, 0], dtype=int32)

        ```
    """
    include_xy = _points(include, "include")
    exclude_xy = _points(exclude, "exclude")
    coords = np.concatenate([include_xy, exclude_xy]).astype(np.float32)
    labels = np.concatenate(
        [np.ones(len(include_xy), dtype=np.int32), np.zeros(len(exclude_xy), dtype=np.int32)]
    )
    return coords, labels
