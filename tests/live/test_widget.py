"""LiveSegmenter's kernel side, without a browser (``samkit/live/widget.py``).

The front end changes the prompt through the widget protocol: one ``update`` message
whose state ``Widget.set_state`` applies. The tests do exactly that, with the bundled
``shapes`` model on generated scenes with ground truth, and check what the front end
gets back (the overlay, the status, the answered request) and what the next cell reads.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import supervision as sv

import samkit
from samkit.live import LIVE_CSS, LIVE_JS, LiveSegmenter

from .support import CountingPredictor, iou, overlay_alpha, xyxy

# ------------------------------------------------------------------ the preset prompt


@pytest.mark.slow
def test_preset_box_computes_the_mask_at_construction(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    assert live.box == xyxy(coffee)
    assert live.masks.shape == (3, *coffee.image.shape[:2])
    assert live.scores.shape == (3,)
    assert live.selected == int(np.argmax(live.scores))
    assert iou(live.mask, coffee.ground_truth[coffee.target]) >= 0.85
    # the overlay is the shown mask, alone, at the image's size
    alpha = overlay_alpha(live.overlay)
    assert alpha.shape == coffee.image.shape[:2]
    np.testing.assert_array_equal(alpha > 0, live.mask)
    assert re.fullmatch(r"puntaje \d\.\d{3} · \d+ ms", live.status), live.status
    assert live.score == round(float(live.scores[live.selected]), 3)
    # the same answer as the cell-by-cell flow gives for the same box
    masks, scores, _ = live_predictor.predict(
        box=np.asarray(xyxy(coffee), np.float32), multimask_output=True
    )
    np.testing.assert_array_equal(live.masks, masks)
    np.testing.assert_allclose(live.scores, scores)


@pytest.mark.slow
def test_value_is_the_same_preset(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    by_value = LiveSegmenter(
        live_predictor,
        coffee.image,
        value={"box": coffee.default_box, "points": [coffee.default_point]},
    )
    by_keywords = LiveSegmenter(
        live_predictor, coffee.image, box=coffee.default_box, points=[coffee.default_point]
    )
    assert by_value.value == by_keywords.value
    assert by_value.value == {
        "box": xyxy(coffee),
        "points": [[float(v) for v in coffee.default_point]],
        "labels": [1],
    }
    np.testing.assert_array_equal(by_value.masks, by_keywords.masks)


@pytest.mark.slow
def test_no_prompt_gives_no_mask(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    live = LiveSegmenter(live_predictor, coffee.image)
    assert live.masks.shape == (0, *coffee.image.shape[:2])
    assert live.scores.shape == (0,)
    assert live.mask is None
    assert isinstance(live.detections, sv.Detections) and len(live.detections) == 0
    assert not overlay_alpha(live.overlay).any()
    # one throwaway prompt warms the decoder up, and shows nothing
    assert len(live_predictor.predict_calls) == 1
    assert live.status == samkit.live.DEFAULT_TEXTS["empty"]


# ------------------------------------------------------------------ as the front end does


@pytest.mark.slow
def test_a_drawn_box_from_the_front_end_updates_mask_and_overlay(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image)
    before = live.overlay
    calls = len(live_predictor.predict_calls)
    live.set_state({"box": xyxy(coffee), "points": [], "labels": [], "request": 1})
    assert live.answered == 1
    assert len(live_predictor.predict_calls) == calls + 1  # one message, one prediction
    assert live.overlay != before
    np.testing.assert_array_equal(overlay_alpha(live.overlay) > 0, live.mask)
    assert iou(live.mask, coffee.ground_truth[coffee.target]) >= 0.85
    detections = live.detections
    assert len(detections) == 1
    np.testing.assert_array_equal(detections.mask[0], live.mask)
    assert detections.confidence[0] == pytest.approx(live.scores[live.selected])


@pytest.mark.slow
def test_an_exclude_click_leaves_the_neighbour_out(
    live_predictor: CountingPredictor, astronaut: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, astronaut.image, points=[astronaut.default_point])
    x, y = astronaut.exclude_point
    live.set_state(
        {"points": [list(astronaut.default_point), [x, y]], "labels": [1, 0], "request": 1}
    )
    assert live.labels == [1, 0]
    assert not live.mask[y, x]
    assert iou(live.mask, astronaut.ground_truth[astronaut.target]) >= 0.85
    # only a point was added to the same prompt: SAM got its previous logits
    assert live.used_mask_input
    assert live_predictor.predict_calls[-1]["mask_input"].shape == (1, *live.logits.shape[1:])
    assert live.status.endswith(" · máscara previa"), live.status


@pytest.mark.slow
def test_picking_a_candidate_shows_it_without_predicting(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    assert len(live.candidates) == 3
    other = (live.selected + 1) % 3
    calls = len(live_predictor.predict_calls)
    live.set_state({"selected": other})
    assert len(live_predictor.predict_calls) == calls
    assert live.overlay == live.candidates[other]["overlay"]
    np.testing.assert_array_equal(live.mask, live.masks[other])
    np.testing.assert_array_equal(live.detections.mask[0], live.masks[other])
    assert live.score == live.candidates[other]["score"]


@pytest.mark.slow
def test_single_mask(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, multimask=False)
    assert live.masks.shape == (1, *coffee.image.shape[:2])
    assert live.candidates == []


@pytest.mark.slow
def test_the_same_prompt_again_does_not_predict(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    calls = len(live_predictor.predict_calls)
    live.set_state({"box": xyxy(coffee), "request": 7})
    assert len(live_predictor.predict_calls) == calls
    assert live.answered == 7


@pytest.mark.slow
def test_clear_removes_the_mask(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, points=[(5, 5)])
    live.clear()
    assert live.value == {"box": [], "points": [], "labels": []}
    assert live.mask is None and len(live.detections) == 0
    assert not overlay_alpha(live.overlay).any()


@pytest.mark.slow
def test_points_then_labels_from_python(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    mask = live.mask.copy()
    live.points = [[540.0, 210.0], [100.0, 100.0]]
    assert "labels has 0 entries for 2 points" in live.error
    np.testing.assert_array_equal(live.mask, mask)  # kept until they agree
    live.labels = [1, 0]
    assert live.error == ""
    assert live.used_mask_input


@pytest.mark.slow
def test_two_points_and_one_label_are_refused(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    message = (
        r"labels must give one label \(1 include, 0 exclude\) per point, but got 1 labels "
        r"for 2 points"
    )
    with pytest.raises(ValueError, match=message):
        LiveSegmenter(live_predictor, coffee.image, points=[(5, 5), (50, 50)], labels=[1])


@pytest.mark.slow
def test_a_value_with_too_few_labels_is_refused_and_changes_nothing(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    before, mask = live.value, live.mask.copy()
    with pytest.raises(ValueError, match="but got 1 labels for 2 points"):
        live.value = {"box": [], "points": [[540.0, 210.0], [100.0, 100.0]], "labels": [1]}
    assert live.value == before
    assert live.error == ""
    np.testing.assert_array_equal(live.mask, mask)  # the mask of the prompt it still shows


# ------------------------------------------------------------------ bad arguments


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # a box and a value
        ({"box": [1, 1, 5, 5], "value": {"box": [1, 1, 5, 5]}}, "either value= or box="),
        # a value with an unknown key
        ({"value": {"boxes": []}}, "value must be a dict with keys"),
        # unknown words for the controls
        ({"texts": {"cancel": "x"}}, r"texts has unknown keys \['cancel'\]"),
        # threads: zero, and not a number
        ({"decoder_threads": 0}, "decoder_threads must be a positive int or None"),
        ({"decoder_threads": "1"}, "decoder_threads must be a positive int or None"),
        # a jupyter_bbox_widget dict without its size
        ({"box": {"x": 1, "y": 2}}, "box: .*width"),
    ],
)
def test_bad_arguments(
    live_predictor: CountingPredictor,
    coffee: samkit.Sample,
    kwargs: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        LiveSegmenter(live_predictor, coffee.image, **kwargs)


def test_bad_predictor_and_image(live_predictor: CountingPredictor) -> None:
    with pytest.raises(ValueError, match=r"predictor must be a segment_anything\.SamPredictor"):
        LiveSegmenter("sam", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"RGB uint8 np.ndarray .* dtype float64"):
        LiveSegmenter(live_predictor, np.zeros((4, 4, 3)))


# ------------------------------------------------------------------ the front end and the repr


def test_front_end_is_a_plain_module_without_imports() -> None:
    assert "export default" in LIVE_JS
    # no CDN, no build step: the module imports nothing
    assert not re.search(r"^\s*import\s", LIVE_JS, re.MULTILINE)
    assert "http://" not in LIVE_JS.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in LIVE_JS


def test_style_sheet_fetches_nothing_and_styles_the_front_end() -> None:
    assert "@import" not in LIVE_CSS and "url(" not in LIVE_CSS
    styled = set(re.findall(r"\.(samkit-live[\w-]*)", LIVE_CSS))
    assert {"samkit-live-stage", "samkit-live-overlay", "samkit-live-svg"} <= styled
    # every class the sheet styles is one the front end puts on the page
    assert styled <= set(re.findall(r"samkit-live[\w-]*", LIVE_JS))


@pytest.mark.slow
def test_repr_is_short(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    text = repr(live)
    assert len(text) < 200 and "base64" not in text
    assert text.startswith("LiveSegmenter(image 640x480, box=[475.0, 145.0, 604.0, 270.0]")


@pytest.mark.slow
@pytest.mark.parametrize(
    "box",
    [
        [-40.0, -30.0, 100.0, 90.0],  # past the top-left corner
        [500.0, 400.0, 900.0, 700.0],  # past the bottom-right corner
        [0.0, 0.0, 640.0, 480.0],  # the whole image, exactly
    ],
)
def test_a_box_past_the_edge_is_clipped_as_samkit_prompts_does(
    live_predictor: CountingPredictor, coffee: samkit.Sample, box: list[float]
) -> None:
    height, width = coffee.image.shape[:2]
    live = LiveSegmenter(live_predictor, coffee.image, box=box)
    assert live.box == samkit.prompts.clip_box(box, (height, width))
    assert (
        live.box
        == samkit.bboxes_to_xyxy(samkit.xyxy_to_bboxes([box]), image_shape=(height, width))[
            0
        ].tolist()
    )
    assert live.masks.shape[1:] == (height, width)
