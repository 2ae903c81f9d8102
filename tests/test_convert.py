from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import supervision as sv
import torch

import samkit


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


AMG_DATA_KEYS = {"predicted_iou", "stability_score", "point_coords", "crop_box"}


@pytest.mark.slow
def test_amg_to_detections_on_real_generator_output(amg_results: list[dict[str, Any]]) -> None:
    assert len(amg_results) > 1
    detections = samkit.amg_to_detections(amg_results)
    n, (height, width) = len(amg_results), amg_results[0]["segmentation"].shape
    assert len(detections) == n
    assert detections.mask is not None and detections.mask.shape == (n, height, width)
    assert detections.mask.dtype == bool
    assert set(detections.data) == AMG_DATA_KEYS
    assert detections.data["predicted_iou"].shape == (n,)
    assert detections.data["stability_score"].shape == (n,)
    assert detections.data["point_coords"].shape == (n, 2)
    assert detections.data["crop_box"].shape == (n, 4)
    # largest first, as sv.Detections.from_sam
    areas = detections.mask.sum(axis=(1, 2))
    assert (np.diff(areas) <= 0).all()
    np.testing.assert_array_equal(detections.confidence, detections.data["predicted_iou"])


@pytest.mark.slow
def test_amg_to_detections_rows_line_up(amg_results: list[dict[str, Any]]) -> None:
    """Every row's data comes from the result whose mask that row holds."""
    detections = samkit.amg_to_detections(amg_results)
    reference = sv.Detections.from_sam(amg_results)
    np.testing.assert_array_equal(detections.mask, reference.mask)
    np.testing.assert_array_equal(detections.xyxy, reference.xyxy)
    for row in range(len(detections)):
        # the results whose mask is this row's mask (near-duplicates can be identical)
        matches = [
            r for r in amg_results if np.array_equal(r["segmentation"], detections.mask[row])
        ]
        assert matches
        assert any(
            np.isclose(r["predicted_iou"], detections.data["predicted_iou"][row])
            and np.isclose(r["stability_score"], detections.data["stability_score"][row])
            and np.allclose(r["point_coords"][0], detections.data["point_coords"][row])
            and np.allclose(r["crop_box"], detections.data["crop_box"][row])
            for r in matches
        )


def test_amg_to_detections_orders_by_area_with_known_values() -> None:
    def result(area: int, iou: float) -> dict[str, Any]:
        mask = np.zeros((4, 5), dtype=bool)
        mask.flat[:area] = True
        return {
            "segmentation": mask,
            "area": area,
            "bbox": [0, 0, 5, 4],
            "predicted_iou": iou,
            "point_coords": [[1.0, 2.0]],
            "stability_score": iou / 2,
            "crop_box": [0, 0, 5, 4],
        }

    detections = samkit.amg_to_detections([result(3, 0.3), result(9, 0.9), result(5, 0.5)])
    np.testing.assert_allclose(detections.confidence, [0.9, 0.5, 0.3])
    np.testing.assert_allclose(detections.data["stability_score"], [0.45, 0.25, 0.15])
    assert detections.mask is not None
    assert detections.mask.sum(axis=(1, 2)).tolist() == [9, 5, 3]


def test_amg_to_detections_empty() -> None:
    detections = samkit.amg_to_detections([])
    assert len(detections) == 0
    assert detections.xyxy.shape == (0, 4)
    assert set(detections.data) == AMG_DATA_KEYS
    assert detections.data["point_coords"].shape == (0, 2)
    assert detections.data["crop_box"].shape == (0, 4)


def drop(result: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != key}


AMG_KEYS_TEXT = "segmentation, area, bbox, predicted_iou, point_coords, stability_score, crop_box"


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        # a dict instead of the list
        (
            lambda results: results[0],
            "results must be the list of dicts returned by "
            "SamAutomaticMaskGenerator.generate(...), but got dict",
        ),
        # the predictor's tuple given to the wrong converter
        (
            lambda results: None,
            "results must be the list of dicts returned by "
            "SamAutomaticMaskGenerator.generate(...), but got NoneType",
        ),
        # an item that is not a dict
        (lambda results: [results[0], "mask"], "result 1 must be a dict, but got str"),
        # a missing key
        (
            lambda results: [results[0], drop(results[1], "predicted_iou")],
            "result 1 is missing key 'predicted_iou'; "
            f"SamAutomaticMaskGenerator.generate(...) gives {AMG_KEYS_TEXT}",
        ),
        # a malformed point
        (
            lambda results: [{**results[0], "point_coords": [1.0, 2.0]}],
            "result 0 key 'point_coords' must be [[x, y]], but got [1.0, 2.0]",
        ),
    ],
)
def test_amg_to_detections_bad_input(
    amg_results: list[dict[str, Any]], make_input: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.amg_to_detections(make_input(amg_results))


def test_prediction_to_detections_on_real_predict(prediction: tuple) -> None:
    masks, scores, logits = prediction
    detections = samkit.prediction_to_detections(masks, scores, logits)
    assert len(detections) == 3
    np.testing.assert_array_equal(detections.mask, masks)
    np.testing.assert_array_equal(detections.xyxy, sv.mask_to_xyxy(masks))
    np.testing.assert_array_equal(detections.confidence, scores)
    np.testing.assert_array_equal(detections.data["logits"], logits)
    assert detections.data["prompt_index"].tolist() == [0, 0, 0]
    assert detections.data["mask_index"].tolist() == [0, 1, 2]


def test_prediction_to_detections_without_logits(prediction: tuple) -> None:
    masks, scores, _ = prediction
    detections = samkit.prediction_to_detections(masks, scores)
    assert set(detections.data) == {"prompt_index", "mask_index"}


def test_prediction_to_detections_on_real_predict_torch_batch(batch_prediction: tuple) -> None:
    masks, scores, logits = batch_prediction
    assert isinstance(masks, torch.Tensor) and masks.shape[:2] == (2, 3)
    detections = samkit.prediction_to_detections(masks, scores, logits)
    assert len(detections) == 6
    assert detections.data["prompt_index"].tolist() == [0, 0, 0, 1, 1, 1]
    assert detections.data["mask_index"].tolist() == [0, 1, 2, 0, 1, 2]
    # row 4 is prompt 1, mask 1
    np.testing.assert_array_equal(detections.mask[4], masks[1, 1].numpy())
    assert detections.confidence[4] == pytest.approx(float(scores[1, 1]))
    np.testing.assert_array_equal(detections.data["logits"][4], logits[1, 1].numpy())
    assert detections.data["logits"].shape == (6, *logits.shape[-2:])


def test_prediction_to_detections_box_of_a_known_mask() -> None:
    masks = np.zeros((2, 6, 8), dtype=bool)
    masks[0, 1:3, 2:5] = True  # rows 1-2, columns 2-4
    # masks[1] is empty: its box is all zeros
    detections = samkit.prediction_to_detections(masks, np.array([0.9, 0.1]))
    np.testing.assert_array_equal(detections.xyxy, [[2, 1, 4, 2], [0, 0, 0, 0]])


def test_prediction_to_detections_empty() -> None:
    detections = samkit.prediction_to_detections(
        np.zeros((0, 6, 8), dtype=bool), np.zeros(0, dtype=np.float32)
    )
    assert len(detections) == 0
    assert detections.xyxy.shape == (0, 4)
    assert detections.mask is not None and detections.mask.shape == (0, 6, 8)


MASKS = np.zeros((3, 6, 8), dtype=bool)
SCORES = np.zeros(3, dtype=np.float32)


@pytest.mark.parametrize(
    ("masks", "scores", "logits", "message"),
    [
        # a list instead of an array
        (
            MASKS.tolist(),
            SCORES,
            None,
            "masks must be a np.ndarray or a torch.Tensor, but got list",
        ),
        # one mask without the C axis
        (
            MASKS[0],
            SCORES,
            None,
            "masks must have shape (C, H, W) from SamPredictor.predict or (B, C, H, W) "
            "from SamPredictor.predict_torch, but got shape (6, 8)",
        ),
        # logits passed as masks (return_logits=True)
        (
            MASKS.astype(np.float32),
            SCORES,
            None,
            "masks must be boolean, as SamPredictor.predict(..., return_logits=False) "
            "gives them, but got dtype float32",
        ),
        # scores of the wrong length
        (
            MASKS,
            SCORES[:2],
            None,
            "scores must have shape (3,) to match masks of shape (3, 6, 8), but got shape (2,)",
        ),
        # scores of a batch that does not match
        (
            np.zeros((2, 3, 6, 8), dtype=bool),
            SCORES,
            None,
            "scores must have shape (2, 3) to match masks of shape (2, 3, 6, 8), "
            "but got shape (3,)",
        ),
        # scores as a list
        (
            MASKS,
            [0.1, 0.2, 0.3],
            None,
            "scores must be a np.ndarray or a torch.Tensor, but got list",
        ),
        # logits of the wrong count
        (
            MASKS,
            SCORES,
            np.zeros((1, 4, 4)),
            "logits must have shape (3, h, w) to match masks of shape (3, 6, 8), "
            "but got shape (1, 4, 4)",
        ),
        # logits without the batch axis
        (
            torch.zeros((2, 3, 6, 8), dtype=torch.bool),
            torch.zeros((2, 3)),
            torch.zeros((3, 4, 4)),
            "logits must have shape (2, 3, h, w) to match masks of shape (2, 3, 6, 8), "
            "but got shape (3, 4, 4)",
        ),
    ],
)
def test_prediction_to_detections_bad_input(
    masks: Any, scores: Any, logits: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.prediction_to_detections(masks, scores, logits)


# ------------------------------------------------------------------ dtypes from autocast


@pytest.mark.parametrize(
    "dtype",
    [
        torch.bfloat16,  # numpy has no bfloat16: "unsupported ScalarType BFloat16" before
        torch.float16,
        torch.float32,
    ],
)
def test_prediction_to_detections_accepts_bfloat16_and_float16(
    batch_prediction: tuple, dtype: torch.dtype
) -> None:
    masks, scores, logits = batch_prediction
    detections = samkit.prediction_to_detections(masks, scores.to(dtype), logits.to(dtype))
    assert detections.confidence is not None
    assert detections.confidence.dtype == np.float32
    assert detections.data["logits"].dtype == np.float32
    np.testing.assert_allclose(
        detections.confidence, scores.to(dtype).float().reshape(-1).numpy(), rtol=0
    )
    np.testing.assert_array_equal(
        detections.data["logits"], logits.to(dtype).float().reshape(6, *logits.shape[-2:])
    )


# ------------------------------------------------------------------ segmentation dtypes


@pytest.mark.parametrize(
    "dtype",
    [
        np.uint8,  # 0/1 bytes, as cv2 gives masks
        np.int64,
        np.float32,  # 0.0/1.0, as a model's output after rounding
        np.float64,
    ],
)
def test_amg_segmentation_of_0_1_numbers_becomes_bool(
    amg_results: list[dict[str, Any]], dtype: Any
) -> None:
    expected = samkit.amg_to_detections(amg_results)
    for result in amg_results:
        result["segmentation"] = result["segmentation"].astype(dtype)
    detections = samkit.amg_to_detections(amg_results)  # no deprecation warning either
    assert detections.mask is not None
    assert detections.mask.dtype == np.bool_
    np.testing.assert_array_equal(detections.mask, expected.mask)


def test_amg_segmentation_as_coco_rle_is_decoded(amg_results: list[dict[str, Any]]) -> None:
    expected = samkit.amg_to_detections(amg_results)
    for result in amg_results:
        result["segmentation"] = samkit.export.masks_to_rle(result["segmentation"][np.newaxis])[0]
    detections = samkit.amg_to_detections(amg_results)
    np.testing.assert_array_equal(detections.mask, expected.mask)


@pytest.mark.parametrize(
    ("segmentation", "message"),
    [
        # a label 2 in the mask
        (
            np.array([[0, 2], [1, 0]], np.uint8),
            "result 0 key 'segmentation' must be a mask of 0s and 1s (or bool), but holds "
            "np.uint8(2) (dtype uint8); threshold it first, e.g. mask > 0.5",
        ),
        # probabilities, not a mask
        (
            np.array([[0.2, 0.9]], np.float32),
            "result 0 key 'segmentation' must be a mask of 0s and 1s (or bool), but holds "
            "np.float32(0.2) (dtype float32); threshold it first, e.g. mask > 0.5",
        ),
        # text
        (
            np.array([["a", "b"]]),
            "result 0 key 'segmentation' must be a bool mask (or 0/1 numbers), but got dtype <U1",
        ),
        # a stack instead of one mask
        (
            np.zeros((2, 3, 4), bool),
            "result 0 key 'segmentation' must be a bool mask of shape (H, W), but got "
            "shape (2, 3, 4)",
        ),
        # a list of lists
        (
            [[True, False]],
            "result 0 key 'segmentation' must be a bool mask of shape (H, W), but got list",
        ),
        # a corrupt RLE dict
        (
            {"size": [4, 4], "counts": "0"},
            "result 0 key 'segmentation': RLE 0: cannot decode RLE counts: they describe 0 "
            "pixels, but its size [4, 4] has 16 (the file is corrupt or cut off)",
        ),
    ],
)
def test_amg_segmentation_that_is_not_a_mask_is_refused(
    amg_results: list[dict[str, Any]], segmentation: Any, message: str
) -> None:
    result = {**amg_results[0], "segmentation": segmentation}
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.amg_to_detections([result])


def test_amg_masks_of_different_sizes_are_refused(amg_results: list[dict[str, Any]]) -> None:
    other = {**amg_results[1], "segmentation": np.zeros((5, 5), bool)}
    message = (
        "result 1 key 'segmentation' has shape (5, 5), but result 0 has shape (96, 128): "
        "all masks must be of one image"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.amg_to_detections([amg_results[0], other])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        # three numbers
        (
            "bbox",
            [1, 2, 3],
            "result 1 key 'bbox' must be 4 numbers [x, y, w, h], but got [1, 2, 3]",
        ),
        # text in the box
        (
            "bbox",
            [1, 2, "3", 4],
            "result 1 key 'bbox' must be 4 numbers [x, y, w, h], but got [1, 2, '3', 4]",
        ),
        # a box that is a string
        (
            "bbox",
            "1,2,3,4",
            "result 1 key 'bbox' must be 4 numbers [x, y, w, h], but got '1,2,3,4'",
        ),
        # a crop box of five numbers
        (
            "crop_box",
            [0, 0, 1, 1, 1],
            "result 1 key 'crop_box' must be 4 numbers [x, y, w, h], but got [0, 0, 1, 1, 1]",
        ),
        # an area that is text: sorting would have failed with a TypeError
        ("area", "12", "result 1 key 'area' must be a finite number, but got '12'"),
        # an area that is None
        ("area", None, "result 1 key 'area' must be a finite number, but got None"),
        # NaN as a score
        (
            "predicted_iou",
            float("nan"),
            "result 1 key 'predicted_iou' must be a finite number, but got nan",
        ),
        # a bool as a score
        (
            "stability_score",
            True,
            "result 1 key 'stability_score' must be a finite number, but got True",
        ),
    ],
)
def test_amg_bad_bbox_or_area_names_the_record_and_key(
    amg_results: list[dict[str, Any]], key: str, value: Any, message: str
) -> None:
    results = [amg_results[0], {**amg_results[1], key: value}]
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.amg_to_detections(results)


def test_amg_to_detections_empty_with_image_shape() -> None:
    # no mask, but the image's size known: a (0, H, W) mask array, as from masks
    detections = samkit.amg_to_detections([], image_shape=(48, 64))
    assert len(detections) == 0
    assert detections.mask is not None and detections.mask.shape == (0, 48, 64)
    assert detections.mask.dtype == bool


def test_amg_to_detections_checks_image_shape(amg_results: list[dict[str, Any]]) -> None:
    height, width = amg_results[0]["segmentation"].shape
    same = samkit.amg_to_detections(amg_results, image_shape=(height, width))
    np.testing.assert_array_equal(same.mask, samkit.amg_to_detections(amg_results).mask)
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"the masks have shape {(height, width)}, but image_shape is {(height + 1, width)}"
        ),
    ):
        samkit.amg_to_detections(amg_results, image_shape=(height + 1, width))


@pytest.mark.parametrize("image_shape", [(0, 5), (5,), "48x64", (4.0, 5), (True, 5)])
def test_amg_to_detections_bad_image_shape(image_shape: Any) -> None:
    with pytest.raises(ValueError, match=re.escape("image_shape must be (H, W)")):
        samkit.amg_to_detections([], image_shape=image_shape)
