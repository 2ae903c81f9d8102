"""How good a mask is: its area, SAM's score, and its IoU with the ground truth.

The generated scenes (``samkit.sample_image`` under the ``shapes`` model) carry their
exact ground truth, so a report can say how close each mask is to it; on a photo it says
that the truth is unknown.

Example:
    ```python
    masks, scores, _ = predictor.predict(box=samkit.bboxes_to_xyxy([sample.default_box])[0])
    print(samkit.mask_report(masks[0], sample, score=scores[0]))
    ```
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv

from samkit.masks import mask_iou, stack_masks
from samkit.samples import Sample


def _check_sample(sample: object) -> Sample:
    if not isinstance(sample, Sample):
        raise ValueError(
            "sample must be a Sample from samkit.sample_image(...), "
            f"but got {type(sample).__name__}"
        )
    return sample


def _check_mask(mask: object, sample: Sample) -> npt.NDArray[np.bool_]:
    """Return ``mask`` as a bool `(H, W)` array of the sample's size, or raise."""
    if isinstance(mask, np.ndarray) and mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        shape = getattr(mask, "shape", None)
        got = f"shape {shape}" if shape is not None else type(mask).__name__
        raise ValueError(f"mask must be one mask, a 2D array of shape (H, W), but got {got}")
    expected = sample.image.shape[:2]
    if mask.shape != expected:
        raise ValueError(
            f"mask must have the image's shape {expected}, but got shape {mask.shape}: "
            "use a mask predicted on this sample's image"
        )
    return stack_masks(mask)[0]


def _best_match(mask: npt.NDArray[np.bool_], sample: Sample) -> tuple[float, int] | None:
    """The highest IoU of ``mask`` with a ground-truth object, and that object's row."""
    if sample.ground_truth is None or len(sample.ground_truth) == 0:
        return None
    ious = np.asarray(mask_iou(mask[np.newaxis], sample.ground_truth))[0]
    row = int(np.argmax(ious))
    return float(ious[row]), row


def _check_score(score: object) -> float | None:
    if score is None:
        return None
    is_number = isinstance(score, numbers.Real | np.floating) and not isinstance(score, bool)
    if not is_number or not math.isfinite(float(score)):  # type: ignore[arg-type]
        raise ValueError(f"score must be a finite number or None, but got {score!r}")
    return float(score)  # type: ignore[arg-type]


def _iou_text(match: tuple[float, int] | None, sample: Sample) -> str:
    if match is None:
        return f"IoU with ground truth: unknown (no ground truth for the photo {sample.name!r})"
    iou, row = match
    return f"IoU with ground truth: {iou:.3f} (object {row}, {sample.labels[row]})"


def mask_report(
    mask: npt.NDArray[Any] | sv.Detections, sample: Sample, score: float | None = None
) -> str:
    """Describe one mask (its area, SAM's score, its IoU with the truth), or detections.

    ``sv.Detections`` are described one line per mask, as :func:`detections_report`.

    Args:
        mask: One mask of the sample's size, a bool (or 0/1 integer) array of shape
            `(H, W)` (a `(1, H, W)` array is accepted too), or ``sv.Detections``.
        sample: The :class:`Sample` the mask was predicted on.
        score: SAM's own estimate of the mask's quality (from ``predict``), if any.

    Returns:
        Lines of text: ``area: 12345 px``, ``score: 0.987`` when given, and
        ``IoU with ground truth: 0.953 (object 2, ellipse)`` against the best-matching
        object when the ground truth is known (a generated scene), or a line saying it is
        unknown (a photo).

    Raises:
        ValueError: If ``sample`` is not a ``Sample``, ``mask`` is not one mask of the
            image's size, or ``score`` is not a finite number.

    Example:
        ```python
        masks, scores, _ = predictor.predict(box=box, multimask_output=True)
        print(samkit.mask_report(masks[scores.argmax()], sample, score=scores.max()))
        ```
    """
    if isinstance(mask, sv.Detections):
        if score is not None:
            raise ValueError("score must be None for detections: their scores are their own")
        return detections_report(mask, sample)
    sample = _check_sample(sample)
    checked = _check_mask(mask, sample)
    value = _check_score(score)
    lines = [f"area: {int(checked.sum())} px"]
    if value is not None:
        lines.append(f"score: {value:.3f}")
    lines.append(_iou_text(_best_match(checked, sample), sample))
    return "\n".join(lines)


def detections_report(detections: sv.Detections, sample: Sample) -> str:
    """Describe every mask of some detections, one line each, as :func:`mask_report`.

    Args:
        detections: ``sv.Detections`` with masks of the sample's size (e.g. from
            ``samkit.prediction_to_detections``). A ``class_name`` in ``data`` is shown.
        sample: The :class:`Sample` the masks were predicted on.

    Returns:
        One line per row, ``#0 person: area 1234 px, score 0.950, IoU with ground
        truth: 0.930 (object 1, ellipse)`` (the IoU only when the ground truth is known),
        or ``no detections`` when there are none.

    Raises:
        ValueError: If ``detections`` has no masks or masks of another size, or
            ``sample`` is not a ``Sample``.

    Example:
        ```python
        print(samkit.scoring.detections_report(detections, sample))
        ```
    """
    sample = _check_sample(sample)
    if not isinstance(detections, sv.Detections):
        raise ValueError(f"detections must be sv.Detections, but got {type(detections).__name__}")
    masks = stack_masks(detections)
    if len(masks) == 0:
        return "no detections"
    names = detections.data.get("class_name")
    lines = []
    for row, mask in enumerate(masks):
        checked = _check_mask(mask, sample)
        label = f" {names[row]}" if names is not None else ""
        score = (
            f", score {float(detections.confidence[row]):.3f}"
            if detections.confidence is not None
            else ""
        )
        match = _best_match(checked, sample)
        truth = f", {_iou_text(match, sample)}" if match is not None else ""
        lines.append(f"#{row}{label}: area {int(checked.sum())} px{score}{truth}")
    return "\n".join(lines)
