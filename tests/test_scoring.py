from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import supervision as sv

import samkit
from samkit.samples import SCENE_SIZE

# ------------------------------------------------------------------ mask_report


@pytest.fixture(scope="module")
def scene() -> samkit.samples.Sample:
    return samkit.sample_image("coffee", model_type="shapes")


@pytest.fixture(scope="module")
def photo() -> samkit.samples.Sample:
    return samkit.sample_image("coffee", model_type="vit_b")


def _target_mask(sample: samkit.samples.Sample) -> np.ndarray:
    assert sample.ground_truth is not None and sample.target is not None
    return sample.ground_truth[sample.target]


def test_mask_report_exact_mask(scene: samkit.samples.Sample) -> None:
    # the ground truth itself: IoU 1 with its own shape
    mask = _target_mask(scene)
    label = scene.labels[scene.target or 0]
    assert samkit.mask_report(mask, scene) == (
        f"área: {int(mask.sum())} px\n"
        f"IoU con la máscara exacta: 1.000 (objeto {scene.target}, {label})"
    )


def test_mask_report_with_score_and_partial_mask(scene: samkit.samples.Sample) -> None:
    # the top half (by rows) of the target: IoU is the kept share of its pixels
    mask = _target_mask(scene).copy()
    rows = np.nonzero(mask.any(axis=1))[0]
    mask[rows[len(rows) // 2] :] = False
    iou = mask.sum() / _target_mask(scene).sum()
    label = scene.labels[scene.target or 0]
    report = samkit.mask_report(mask, scene, score=np.float32(0.91234))
    assert report.splitlines() == [
        f"área: {int(mask.sum())} px",
        "puntaje: 0.912",
        f"IoU con la máscara exacta: {iou:.3f} (objeto {scene.target}, {label})",
    ]


def test_mask_report_empty_mask(scene: samkit.samples.Sample) -> None:
    # an empty mask matches nothing: IoU 0 (with object 0, the first of the ties)
    report = samkit.mask_report(np.zeros(SCENE_SIZE, bool), scene)
    assert report == f"área: 0 px\nIoU con la máscara exacta: 0.000 (objeto 0, {scene.labels[0]})"


def test_mask_report_accepts_one_mask_with_a_leading_axis(scene: samkit.samples.Sample) -> None:
    mask = _target_mask(scene)
    assert samkit.mask_report(mask[np.newaxis], scene) == samkit.mask_report(mask, scene)


def test_mask_report_on_a_photo(photo: samkit.samples.Sample) -> None:
    mask = np.zeros(photo.image.shape[:2], bool)
    mask[10:20, 10:30] = True
    # a photo has no exact masks: no line about them at all
    assert samkit.mask_report(mask, photo, score=0.5) == "área: 200 px\npuntaje: 0.500"


@pytest.mark.parametrize(
    ("mask", "kwargs", "message"),
    [
        # a list is not a mask
        ([[True]], {}, r"mask must be one mask, a 2D array of shape \(H, W\), but got list"),
        # three masks at once
        (np.zeros((3, *SCENE_SIZE), bool), {}, r"but got shape \(3, 480, 640\)"),
        # a mask of another image
        (np.zeros((10, 10), bool), {}, r"mask must have the image's shape \(480, 640\)"),
        # a float mask
        (np.zeros(SCENE_SIZE, np.float32), {}, "masks must be boolean"),
        # a score that is not a number
        (np.zeros(SCENE_SIZE, bool), {"score": "high"}, "score must be a finite number"),
        # NaN and booleans are not scores
        (np.zeros(SCENE_SIZE, bool), {"score": float("nan")}, "score must be a finite number"),
        (np.zeros(SCENE_SIZE, bool), {"score": True}, "score must be a finite number"),
    ],
)
def test_mask_report_rejects(
    scene: samkit.samples.Sample, mask: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.mask_report(mask, scene, **kwargs)


def test_mask_report_rejects_a_non_sample() -> None:
    with pytest.raises(ValueError, match=r"sample must be a Sample from samkit\.sample_image"):
        samkit.mask_report(np.zeros((2, 2), bool), "coffee")  # type: ignore[arg-type]


# ------------------------------------------------------------------ detections_report


def test_detections_report(scene: samkit.samples.Sample) -> None:
    assert scene.ground_truth is not None
    masks = scene.ground_truth[:2]
    detections = sv.Detections(
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32),
        mask=masks,
        confidence=np.array([0.9, 0.8], np.float32),
        data={"class_name": np.array(["a", "b"])},
    )
    assert samkit.scoring.detections_report(detections, scene).splitlines() == [
        f"#0 a: área {int(masks[0].sum())} px, puntaje 0.900, "
        f"IoU con la máscara exacta: 1.000 (objeto 0, {scene.labels[0]})",
        f"#1 b: área {int(masks[1].sum())} px, puntaje 0.800, "
        f"IoU con la máscara exacta: 1.000 (objeto 1, {scene.labels[1]})",
    ]


def test_detections_report_without_names_or_scores(scene: samkit.samples.Sample) -> None:
    mask = np.zeros((1, *SCENE_SIZE), bool)
    detections = sv.Detections(xyxy=np.zeros((1, 4), np.float32), mask=mask)
    report = samkit.scoring.detections_report(detections, scene)
    assert (
        report == f"#0: área 0 px, IoU con la máscara exacta: 0.000 (objeto 0, {scene.labels[0]})"
    )


def test_detections_report_on_a_photo(photo: samkit.samples.Sample) -> None:
    # no ground truth: no IoU on every line
    mask = np.zeros((1, *photo.image.shape[:2]), bool)
    mask[0, :10, :10] = True
    detections = sv.Detections(
        xyxy=np.zeros((1, 4), np.float32), mask=mask, confidence=np.array([0.5], np.float32)
    )
    assert samkit.scoring.detections_report(detections, photo) == "#0: área 100 px, puntaje 0.500"


def test_detections_report_empty(scene: samkit.samples.Sample) -> None:
    empty = sv.Detections(xyxy=np.zeros((0, 4), np.float32), mask=np.zeros((0, *SCENE_SIZE), bool))
    assert samkit.scoring.detections_report(empty, scene) == "ninguna máscara"


@pytest.mark.parametrize(
    ("detections", "message"),
    [
        # not detections
        (np.zeros((1, *SCENE_SIZE), bool), "detections must be sv.Detections, but got ndarray"),
        # boxes only
        (sv.Detections(xyxy=np.zeros((1, 4), np.float32)), "detections have no masks"),
        # masks of another size
        (
            sv.Detections(xyxy=np.zeros((1, 4), np.float32), mask=np.zeros((1, 5, 5), bool)),
            r"mask must have the image's shape \(480, 640\)",
        ),
    ],
)
def test_detections_report_rejects(
    scene: samkit.samples.Sample, detections: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.scoring.detections_report(detections, scene)


def _record(shape: tuple[int, int]) -> dict[str, object]:
    return {
        "segmentation": np.zeros(shape, dtype=bool),
        "area": 0,
        "bbox": [0, 0, 1, 1],
        "predicted_iou": 0.9,
        "point_coords": [[1.0, 1.0]],
        "stability_score": 0.95,
        "crop_box": [0, 0, shape[1], shape[0]],
    }


def test_amg_report() -> None:
    report = samkit.scoring.amg_report([_record((4, 6)), _record((4, 6))])
    assert report == (
        "máscaras: 2\n"
        "claves: ['area', 'bbox', 'crop_box', 'point_coords', 'predicted_iou', "
        "'segmentation', 'stability_score']\n"
        "segmentation: (4, 6) bool"
    )


def test_amg_report_with_no_mask() -> None:
    # empty: what random weights or strict thresholds give; the report says what to lower
    assert samkit.scoring.amg_report([]) == ("máscaras: 0\n" + samkit.scoring.NO_AMG_MASKS_HINT)
    assert "pred_iou_thresh" in samkit.scoring.NO_AMG_MASKS_HINT


def test_amg_report_with_coco_rle() -> None:
    record = {**_record((4, 6)), "segmentation": {"size": [4, 6], "counts": "0b1"}}
    assert samkit.scoring.amg_report([record]).splitlines()[-1] == (
        "segmentation: RLE de COCO, size [4, 6], counts de 3 caracteres"
    )


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ("masks", "records must be the list of dicts"),  # a string is not a list
        (None, "records must be the list of dicts"),
        ([{"segmentation": "x"}], "records must be dicts with a 'segmentation' array"),
        ([3], "records must be dicts with a 'segmentation' array"),
    ],
)
def test_amg_report_rejects(records: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        samkit.scoring.amg_report(records)  # type: ignore[arg-type]
