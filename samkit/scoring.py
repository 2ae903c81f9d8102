"""How good a mask is: its area, SAM's score, and its IoU with the ground truth.

The generated scenes (``samkit.sample_image`` under the ``shapes`` model) carry their
exact ground truth, so a report can say how close each mask is to it; on a photo it says
that the truth is unknown.

The reports are text for the tutorial's notebooks to print, so they are worded in
Spanish, as everything a learner reads there ("puntaje" is SAM's score); the numbers
in them are the values this module computes.

Example:
    ```python
    masks, scores, _ = predictor.predict(box=samkit.bboxes_to_xyxy([sample.default_box])[0])
    print(samkit.mask_report(masks[0], sample, score=scores[0]))
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv

from samkit.checks import is_finite_number
from samkit.masks import mask_iou, stack_masks
from samkit.samples import Sample

#: What a report says when there is no mask to describe.
NO_MASKS = "ninguna máscara"

#: How a report names a mask's IoU with the exact mask of a generated scene's object.
IOU_LABEL = "IoU con la máscara exacta"

#: What :func:`amg_report` adds when the generator kept no mask.
NO_AMG_MASKS_HINT = (
    "ninguna máscara pasó los filtros del generador: probá bajar pred_iou_thresh o "
    "stability_score_thresh (samkit.amg_settings(pred_iou_thresh=0.7))"
)


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
    if not is_finite_number(score):
        raise ValueError(f"score must be a finite number or None, but got {score!r}")
    return float(score)  # type: ignore[arg-type]


def _iou_text(match: tuple[float, int], sample: Sample) -> str:
    iou, row = match
    return f"{IOU_LABEL}: {iou:.3f} (objeto {row}, {sample.labels[row]})"


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
        Lines of Spanish text: ``área: 12345 px``, ``puntaje: 0.987`` when a score is
        given, and ``IoU con la máscara exacta: 0.953 (objeto 2, elipse)`` against
        the best-matching object when the ground truth is known (a generated scene);
        a photo has no such line.

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
    lines = [f"área: {int(checked.sum())} px"]
    if value is not None:
        lines.append(f"puntaje: {value:.3f}")
    match = _best_match(checked, sample)
    if match is not None:
        lines.append(_iou_text(match, sample))
    return "\n".join(lines)


def detections_report(detections: sv.Detections, sample: Sample) -> str:
    """Describe every mask of some detections, one line each, as :func:`mask_report`.

    Args:
        detections: ``sv.Detections`` with masks of the sample's size (e.g. from
            ``samkit.prediction_to_detections``). A ``class_name`` in ``data`` is shown.
        sample: The :class:`Sample` the masks were predicted on.

    Returns:
        One line of Spanish text per row, ``#0 persona: área 1234 px, puntaje 0.950,
        IoU con la máscara exacta: 0.930 (objeto 1, elipse)`` (the IoU only when the ground
        truth is known), or ``ninguna máscara`` when there are none.

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
        return NO_MASKS
    names = detections.data.get("class_name")
    lines = []
    for row, mask in enumerate(masks):
        checked = _check_mask(mask, sample)
        label = f" {names[row]}" if names is not None else ""
        score = (
            f", puntaje {float(detections.confidence[row]):.3f}"
            if detections.confidence is not None
            else ""
        )
        match = _best_match(checked, sample)
        truth = f", {_iou_text(match, sample)}" if match is not None else ""
        lines.append(f"#{row}{label}: área {int(checked.sum())} px{score}{truth}")
    return "\n".join(lines)


def amg_report(records: Sequence[Mapping[str, Any]]) -> str:
    """Describe what ``SamAutomaticMaskGenerator.generate`` returned: count, keys, format.

    Args:
        records: The list of dicts returned by ``generate`` (it may be empty).

    Returns:
        Spanish text: ``máscaras: 19``, then the keys of a record and the shape and
        dtype of its ``segmentation`` (``segmentation: (480, 640) bool``, or its size
        and length for ``output_mode="coco_rle"``); with no
        record, a line saying that no mask passed the generator's filters and which
        settings to lower.

    Raises:
        ValueError: If ``records`` is not a list of dicts with a ``segmentation`` array.

    Example:
        ```python
        print(samkit.scoring.amg_report(mask_generator.generate(image)))
        ```
    """
    if not isinstance(records, Sequence) or isinstance(records, str | bytes):
        raise ValueError(
            "records must be the list of dicts returned by SamAutomaticMaskGenerator."
            f"generate, but got {type(records).__name__}"
        )
    lines = [f"máscaras: {len(records)}"]
    if len(records) == 0:
        return "\n".join([*lines, NO_AMG_MASKS_HINT])
    first = records[0]
    segmentation = first.get("segmentation") if isinstance(first, Mapping) else None
    if isinstance(segmentation, np.ndarray):
        described = f"{segmentation.shape} {segmentation.dtype}"
    elif isinstance(segmentation, Mapping) and {"size", "counts"} <= set(segmentation):
        counts = segmentation["counts"]
        described = (
            f"RLE de COCO, size {list(segmentation['size'])}, counts de {len(counts)} caracteres"
        )
    else:
        raise ValueError(
            "records must be dicts with a 'segmentation' array (output_mode='binary_mask') "
            "or COCO RLE dict (output_mode='coco_rle'), but the first one is "
            f"{type(first).__name__} with segmentation {type(segmentation).__name__}"
        )
    lines.append(f"claves: {sorted(first)}")
    lines.append(f"segmentation: {described}")
    return "\n".join(lines)
