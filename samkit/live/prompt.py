"""The live widget's prompt, checked: a box, points and their labels in image pixels.

Every value that reaches the widget (a preset, a cell setting ``.box``, or a message from
the front end) goes through these checks, so a bad one is refused with a
:class:`PromptError` that says what was expected and what arrived, and nothing changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import traitlets

from samkit.prompts import bboxes_to_xyxy, clip_box

#: The keys of a whole prompt given at once (``value=`` and :attr:`LiveSegmenter.value`).
VALUE_KEYS = frozenset({"box", "points", "labels"})


class PromptError(traitlets.TraitError, ValueError):
    """A box, point or label that the widget cannot use (a ``ValueError``)."""


def finite_number(value: Any, what: str) -> float:
    """Return ``value`` as a float, refusing anything that is not a finite real number.

    Args:
        value: A Python or numpy int or float (not a bool).
        what: What the number is, for the message (e.g. ``"box[2]"``).

    Returns:
        The number as a float.

    Raises:
        PromptError: (a ``ValueError``) If it is not a number, or is NaN or infinite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise PromptError(f"{what} must be a number, but got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise PromptError(f"{what} must be a finite number, but got {number}")
    return number


def check_box(box: Any, width: int, height: int) -> list[float]:
    """Return ``box`` as ``[x0, y0, x1, y1]`` in image pixels, or ``[]`` for no box.

    Args:
        box: ``None`` or an empty sequence (no box); four numbers in xyxy; an array of
            shape `(4,)` or `(1, 4)`; or a jupyter_bbox_widget dict (``x``, ``y``,
            ``width``, ``height``).
        width: The image's width in pixels.
        height: The image's height in pixels.

    Returns:
        ``[]`` or four floats with ``0 <= x0 < x1 <= width`` and ``0 <= y0 < y1 <= height``
        (a box past the edge is clipped to the image: ``samkit.prompts.clip_box``).

    Raises:
        PromptError: (a ``ValueError``) If it is none of those, or lies wholly outside
            the image.
    """
    if box is None:
        return []
    if isinstance(box, Mapping):
        try:
            box = bboxes_to_xyxy([box])[0].tolist()
        except ValueError as error:
            raise PromptError(f"box: {error}") from None
    values = np.asarray(box, dtype=object).reshape(-1).tolist() if not isinstance(box, str) else box
    if isinstance(values, str) or len(values) not in (0, 4):
        raise PromptError(
            f"box must be [x0, y0, x1, y1] (4 numbers, image pixels) or [] for no box, "
            f"but got {box!r}"
        )
    if not values:
        return []
    x0, y0, x1, y1 = (finite_number(v, f"box[{i}]") for i, v in enumerate(values))
    if not (x1 > x0 and y1 > y0):
        raise PromptError(f"box must have x1 > x0 and y1 > y0 (xyxy), but got {[x0, y0, x1, y1]}")
    try:  # the rule of samkit.prompts: clipped, refused only when wholly outside
        return [round(v, 1) for v in clip_box([x0, y0, x1, y1], (height, width))]
    except ValueError as error:
        raise PromptError(str(error)) from None


def check_points(points: Any, width: int, height: int) -> list[list[float]]:
    """Return ``points`` as a list of ``[x, y]`` pixels inside the image.

    Args:
        points: ``None``, or a sequence of ``(x, y)`` pairs (or an array of shape `(N, 2)`).
        width: The image's width in pixels.
        height: The image's height in pixels.

    Returns:
        A list of ``[x, y]`` floats (empty for no points).

    Raises:
        PromptError: (a ``ValueError``) If a point is not two numbers inside the image.
    """
    if points is None:
        return []
    if isinstance(points, np.ndarray):
        points = points.tolist()
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Sequence):
        raise PromptError(f"points must be a list of (x, y) pairs, but got {points!r}")
    out = []
    for i, point in enumerate(points):
        if isinstance(point, np.ndarray):
            point = point.tolist()
        if isinstance(point, (str, bytes)) or not isinstance(point, Sequence) or len(point) != 2:
            raise PromptError(f"points[{i}] must be an (x, y) pair, but got {point!r}")
        x, y = (finite_number(v, f"points[{i}]") for v in point)
        if not (0 <= x <= width and 0 <= y <= height):
            raise PromptError(
                f"points[{i}] must lie inside the {width}x{height} image, but got {[x, y]}"
            )
        out.append([round(x, 1), round(y, 1)])
    return out


def check_labels(labels: Any) -> list[int]:
    """Return ``labels`` as a list of 1 (include) and 0 (exclude).

    Args:
        labels: ``None``, or a sequence (or array of shape `(N,)`) of 0 and 1.

    Returns:
        The labels as a list of ints (empty for none).

    Raises:
        PromptError: (a ``ValueError``) If a label is not 0 or 1.
    """
    if labels is None:
        return []
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if isinstance(labels, (str, bytes, Mapping)) or not isinstance(labels, Sequence):
        raise PromptError(f"labels must be a list of 1 (include) and 0 (exclude), got {labels!r}")
    out = []
    for i, label in enumerate(labels):
        if isinstance(label, bool) or label not in (0, 1):
            raise PromptError(f"labels[{i}] must be 1 (include) or 0 (exclude), but got {label!r}")
        out.append(int(label))
    return out


def labels_for(points: list[list[float]], labels: Any) -> list[int]:
    """The labels of ``points``: checked, one per point (all 1 when ``None``).

    Args:
        points: The checked points, a list of ``[x, y]``.
        labels: ``None``, or one label per point (1 include, 0 exclude).

    Returns:
        The labels as a list of ints, as long as ``points``.

    Raises:
        PromptError: (a ``ValueError``) If a label is not 0 or 1, or their number is not
            the number of points.
    """
    checked = check_labels([1] * len(points) if labels is None else labels)
    if len(checked) != len(points):
        raise PromptError(
            f"labels must give one label (1 include, 0 exclude) per point, but got "
            f"{len(checked)} labels for {len(points)} points"
        )
    return checked


def check_value(value: Any) -> Mapping[str, Any]:
    """Return ``value`` if it is a whole prompt: a dict with keys from :data:`VALUE_KEYS`.

    Args:
        value: ``{"box": ..., "points": ..., "labels": ...}`` (any key may be left out).

    Returns:
        ``value`` itself; its entries are checked by :func:`check_box` and the others.

    Raises:
        ValueError: If it is not a dict, or has another key.
    """
    if not isinstance(value, Mapping) or set(value) - VALUE_KEYS:
        raise ValueError(
            f"value must be a dict with keys 'box', 'points', 'labels', but got {value!r}"
        )
    return value


def preset_prompt(
    value: Mapping[str, Any] | None, box: Any, points: Any, labels: Any
) -> tuple[Any, Any, Any]:
    """The preset ``(box, points, labels)``: from ``value=`` or from the three keywords.

    Args:
        value: The whole prompt as one dict, or ``None``.
        box: The preset box, or ``None``.
        points: The preset points, or ``None``.
        labels: The preset labels, or ``None``.

    Returns:
        ``(box, points, labels)``, not yet checked against the image.

    Raises:
        ValueError: If both ``value`` and a keyword are given, or ``value`` is no prompt.
    """
    if value is None:
        return box, points, labels
    if box is not None or points is not None or labels is not None:
        raise ValueError("give either value= or box=/points=/labels=, not both")
    value = check_value(value)
    return value.get("box"), value.get("points"), value.get("labels")


def check_selected(value: int, count: int) -> int:
    """Return ``value`` if it picks one of ``count`` candidates (0 is always allowed).

    Args:
        value: The index of the candidate to show.
        count: How many candidate masks there are (0 with no prompt).

    Returns:
        ``value`` as an int.

    Raises:
        PromptError: (a ``ValueError``) If it is no candidate's index.
    """
    if value == 0 or 0 <= value < count:
        return int(value)
    raise PromptError(
        f"selected must be the index of one of the {count} candidate mask(s) "
        f"(0 to {max(count - 1, 0)}), but got {value}"
    )
