"""SAM 2.1 behind SamPredictor's interface: shapes, dtypes, prompts, the live widget.

Every SAM 2.1 size runs at its small random-weight configuration (1024 input, as the
real one): the masks mean nothing, their format is the real one, compared with what the
stock ``SamPredictor`` returns for the same prompts.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import supervision as sv

import samkit
from samkit.hf import load
from samkit.hf.configs import HF_FAMILIES
from samkit.hf.sam2 import Sam2Predictor, load_predictor
from samkit.live import LiveSegmenter

SIZES = [name for name, family in HF_FAMILIES.items() if family == "sam2"]
IMAGE = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
BOX = np.array([20, 10, 110, 90], dtype=np.float32)


@pytest.fixture(scope="module")
def sam2() -> Any:
    predictor = load_predictor("sam2.1_tiny", weights="small", device="cpu", keep=True)
    predictor.set_image(IMAGE)
    yield predictor
    predictor.hf.release()


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_every_size_answers_a_box_like_sam_predictor(size: str) -> None:
    predictor = load_predictor(size, weights="small", device="cpu", keep=True)
    predictor.set_image(IMAGE)
    masks, scores, logits = predictor.predict(box=BOX, multimask_output=True)
    assert (masks.shape, masks.dtype) == ((3, 120, 160), np.bool_)
    assert (scores.shape, scores.dtype) == ((3,), np.float32)
    assert (logits.shape, logits.dtype) == ((3, 256, 256), np.float32)
    predictor.hf.release()


@pytest.mark.slow
def test_outputs_have_the_stock_predictor_types(sam2: Sam2Predictor, prediction: Any) -> None:
    # prediction: the stock SamPredictor's answer to a box, three masks
    ours = sam2.predict(box=BOX, multimask_output=True)
    for mine, reference in zip(ours, prediction, strict=True):
        assert type(mine) is type(reference) and mine.dtype == reference.dtype
        assert mine.ndim == reference.ndim and len(mine) == len(reference)
    assert ours[2].shape[1:] == (256, 256)  # the official SAM's low-resolution size


@pytest.mark.slow
@pytest.mark.parametrize(
    "prompt",
    [
        {"point_coords": [[40, 30], [100, 80]], "point_labels": [1, 0]},
        {"box": BOX},
        {"box": BOX[None]},
        {"box": BOX, "point_coords": [[60, 50]], "point_labels": [0]},
        {"point_coords": [[40, 30]], "point_labels": [1], "mask_input": np.zeros((1, 256, 256))},
    ],
)
@pytest.mark.parametrize("multimask", [True, False])
def test_each_prompt_kind(sam2: Sam2Predictor, prompt: dict[str, Any], multimask: bool) -> None:
    masks, scores, logits = sam2.predict(**prompt, multimask_output=multimask)
    count = 3 if multimask else 1
    assert masks.shape == (count, 120, 160) and scores.shape == (count,)
    assert logits.shape == (count, 256, 256) and np.isfinite(logits).all()
    values, _, _ = sam2.predict(**prompt, multimask_output=multimask, return_logits=True)
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values > 0, masks)


@pytest.mark.slow
def test_the_prompt_changes_the_answer_and_logits_feed_back(sam2: Sam2Predictor) -> None:
    _, _, first = sam2.predict(box=BOX, multimask_output=False)
    _, _, other = sam2.predict(box=BOX + 10, multimask_output=False)
    _, _, refined = sam2.predict(box=BOX, mask_input=first, multimask_output=False)
    assert not np.allclose(first, other) and not np.allclose(first, refined)


@pytest.mark.slow
def test_bgr_is_the_same_image_flipped() -> None:
    predictor = load_predictor("sam2.1_tiny", weights="small", device="cpu", keep=True)
    predictor.set_image(IMAGE)
    rgb = predictor.predict(box=BOX)[2]
    predictor.set_image(np.ascontiguousarray(IMAGE[..., ::-1]), image_format="BGR")
    np.testing.assert_allclose(predictor.predict(box=BOX)[2], rgb, atol=1e-6)
    predictor.hf.release()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ({"point_coords": [[1, 2]]}, "point_coords and point_labels must be given together"),
        (
            {"point_coords": [[1, 2, 3]], "point_labels": [1]},
            "point_coords must have shape (N, 2), but got shape (1, 3)",
        ),
        (
            {"point_coords": [[1, 2]], "point_labels": [1, 1]},
            "point_labels must have shape (1), but got shape (2,)",
        ),
        (
            {"point_coords": [[1, 2]], "point_labels": [2]},
            "point_labels must be 0 or 1, but got [2.0]",
        ),
        ({"box": [1, 2, 3]}, "box must have shape (4), but got shape (3,)"),
        ({"box": [1, 2, "x", 4]}, "box must be numbers of shape (4,)"),
        ({"box": [1, 2, np.nan, 4]}, "box must be finite numbers"),
        (
            {"mask_input": np.zeros((256, 256))},
            "mask_input must have shape (1, N, N), but got shape (256, 256)",
        ),
    ],
)
def test_bad_prompts_are_refused(sam2: Sam2Predictor, prompt: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        sam2.predict(**prompt)


def test_no_image_and_wrong_models_are_refused() -> None:
    predictor = load_predictor("sam2.1_tiny", weights="small", device="cpu", keep=True)
    with pytest.raises(RuntimeError, match=re.escape("An image must be set with .set_image(...)")):
        predictor.predict(box=BOX)
    with pytest.raises(
        ValueError, match=re.escape("image must be uint8 of shape (H, W, 3), but got float64")
    ):
        predictor.set_image(IMAGE.astype(float))
    with pytest.raises(ValueError, match="image_format must be 'RGB' or 'BGR', but got 'RGBA'"):
        predictor.set_image(IMAGE, image_format="RGBA")
    sam3 = load.load_hf("sam3", weights="small", device="cpu", keep=True)
    with pytest.raises(ValueError, match=r"Sam2Predictor needs a SAM 2\.1 model.*but got 'sam3'"):
        Sam2Predictor(sam3)
    predictor.hf.release()
    sam3.release()


@pytest.mark.slow
def test_converters_take_its_output_unchanged(sam2: Sam2Predictor) -> None:
    masks, scores, logits = sam2.predict(box=BOX, multimask_output=True)
    detections = samkit.prediction_to_detections(masks, scores, logits)
    assert isinstance(detections, sv.Detections) and len(detections) == 3
    np.testing.assert_array_equal(detections.confidence, scores)
    box = samkit.bboxes_to_xyxy([{"x": 20, "y": 10, "width": 90, "height": 80, "label": ""}])
    np.testing.assert_array_equal(sam2.predict(box=box[0])[2], logits)


@pytest.mark.slow
def test_live_segmenter_answers_a_box_and_a_click(sam2: Sam2Predictor) -> None:
    live = LiveSegmenter(sam2, IMAGE, box=[20, 10, 110, 90])
    expected = sam2.predict(box=BOX, multimask_output=True)
    np.testing.assert_array_equal(live.masks, expected[0])
    np.testing.assert_allclose(live.scores, expected[1])
    assert re.fullmatch(r"puntaje \d\.\d{3} · \d+ ms", live.status), live.status
    live.set_state({"points": [[60.0, 50.0]], "labels": [0]})  # a click, as the front end sends it
    assert live.used_mask_input and live.status.endswith(" · máscara previa")
    assert live.masks.shape == (3, 120, 160) and live.error == ""
    clicked = sam2.predict(
        point_coords=[[60, 50]],
        point_labels=[0],
        box=BOX,
        mask_input=expected[2][int(np.argmax(expected[1]))][None],
    )
    np.testing.assert_array_equal(live.masks, clicked[0])
    assert len(live.detections) == 1


@pytest.mark.slow
def test_automatic_masks_with_sam2(sam2: Sam2Predictor) -> None:
    everything = samkit.hf.generate_masks(
        sam2.hf, IMAGE, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0
    )
    assert isinstance(everything, sv.Detections) and len(everything) >= 1
    assert everything.mask.shape[1:] == (120, 160) and everything.mask.dtype == bool
    assert (np.diff(everything.area) <= 0).all()  # largest first
    assert everything.confidence.dtype == np.float32
    # random weights predict an IoU near 0.5: a threshold of 0.99 keeps nothing
    none = samkit.hf.generate_masks(sam2.hf, IMAGE, points_per_side=4, pred_iou_thresh=0.99)
    assert len(none) == 0 and none.mask.shape == (0, 120, 160)
    with pytest.raises(ValueError, match=re.escape("image must be RGB uint8 of shape (H, W, 3)")):
        samkit.hf.generate_masks(sam2.hf, IMAGE[..., 0])
