"""LiveSegmenter's kernel side, without a browser.

The front end changes the prompt through the widget protocol: one ``update`` message
whose state ``Widget.set_state`` applies. The tests do exactly that, with the bundled
``shapes`` model on generated scenes with ground truth, and check what the front end
gets back (the overlay, the status, the answered request) and what the next cell reads.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import numpy as np
import pytest
import supervision as sv
import torch
from PIL import Image
from segment_anything import SamPredictor

import samkit
from samkit.live import LIVE_JS, LiveSegmenter, mask_overlay_png


class CountingPredictor(SamPredictor):
    """A ``SamPredictor`` that counts its ``predict`` and ``set_image`` calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.predict_calls: list[dict[str, Any]] = []
        self.set_image_calls = 0

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self.predict_calls.append(kwargs)
        return super().predict(*args, **kwargs)

    def set_image(self, *args: Any, **kwargs: Any) -> None:
        self.set_image_calls += 1
        super().set_image(*args, **kwargs)


@pytest.fixture(scope="module")
def sam() -> Any:
    return samkit.load_sam("shapes", device="cpu")


@pytest.fixture
def live_predictor(sam: Any) -> CountingPredictor:
    return CountingPredictor(sam)


@pytest.fixture(scope="module")
def coffee() -> samkit.Sample:
    return samkit.sample_image("coffee", model_type="shapes")


@pytest.fixture(scope="module")
def astronaut() -> samkit.Sample:
    return samkit.sample_image("astronaut", model_type="shapes")


def _iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / (mask | truth).sum())


def _xyxy(sample: samkit.Sample) -> list[float]:
    return samkit.bboxes_to_xyxy([sample.default_box])[0].tolist()


def _decode(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def _alpha(url: str) -> np.ndarray:
    return np.asarray(_decode(url).convert("RGBA"))[..., 3]


# ------------------------------------------------------------------ the preset prompt


def test_preset_box_computes_the_mask_at_construction(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    assert live.box == _xyxy(coffee)
    assert live.masks.shape == (3, *coffee.image.shape[:2])
    assert live.scores.shape == (3,)
    assert live.selected == int(np.argmax(live.scores))
    assert _iou(live.mask, coffee.ground_truth[coffee.target]) >= 0.85
    # the overlay is the shown mask, alone, at the image's size
    alpha = _alpha(live.overlay)
    assert alpha.shape == coffee.image.shape[:2]
    np.testing.assert_array_equal(alpha > 0, live.mask)
    assert re.fullmatch(r"score \d\.\d{3} · \d+ ms", live.status), live.status
    assert live.score == round(float(live.scores[live.selected]), 3)
    # the same answer as the cell-by-cell flow gives for the same box
    masks, scores, _ = live_predictor.predict(
        box=np.asarray(_xyxy(coffee), np.float32), multimask_output=True
    )
    np.testing.assert_array_equal(live.masks, masks)
    np.testing.assert_allclose(live.scores, scores)


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
        "box": _xyxy(coffee),
        "points": [[float(v) for v in coffee.default_point]],
        "labels": [1],
    }
    np.testing.assert_array_equal(by_value.masks, by_keywords.masks)


def test_no_prompt_gives_no_mask(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    live = LiveSegmenter(live_predictor, coffee.image)
    assert live.masks.shape == (0, *coffee.image.shape[:2])
    assert live.scores.shape == (0,)
    assert live.mask is None
    assert isinstance(live.detections, sv.Detections) and len(live.detections) == 0
    assert not _alpha(live.overlay).any()
    # one throwaway prompt warms the decoder up, and shows nothing
    assert len(live_predictor.predict_calls) == 1
    assert live.status == samkit.live.DEFAULT_TEXTS["empty"]


# ------------------------------------------------------------------ as the front end does


def test_a_drawn_box_from_the_front_end_updates_mask_and_overlay(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image)
    before = live.overlay
    calls = len(live_predictor.predict_calls)
    live.set_state({"box": _xyxy(coffee), "points": [], "labels": [], "request": 1})
    assert live.answered == 1
    assert len(live_predictor.predict_calls) == calls + 1  # one message, one prediction
    assert live.overlay != before
    np.testing.assert_array_equal(_alpha(live.overlay) > 0, live.mask)
    assert _iou(live.mask, coffee.ground_truth[coffee.target]) >= 0.85
    detections = live.detections
    assert len(detections) == 1
    np.testing.assert_array_equal(detections.mask[0], live.mask)
    assert detections.confidence[0] == pytest.approx(live.scores[live.selected])


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
    assert _iou(live.mask, astronaut.ground_truth[astronaut.target]) >= 0.85
    # only a point was added to the same prompt: SAM got its previous logits
    assert live.used_mask_input
    assert live_predictor.predict_calls[-1]["mask_input"].shape == (1, *live.logits.shape[1:])
    assert "mask_input" in live.status


@pytest.mark.parametrize(
    ("change", "reuse"),
    [
        # a point added to the same box: the previous logits help
        ({"points": [[540.0, 210.0]], "labels": [1]}, True),
        # the box moved: a new question, no previous answer to correct
        ({"box": [470.0, 140.0, 600.0, 268.0]}, False),
        # a point removed (none left): start again
        ({"points": [], "labels": []}, False),
    ],
)
def test_previous_logits_only_when_points_are_added(
    live_predictor: CountingPredictor,
    coffee: samkit.Sample,
    change: dict[str, Any],
    reuse: bool,
) -> None:
    start = {"box": coffee.default_box}
    if not change.get("points"):
        start["points"] = [(540, 210)]
    live = LiveSegmenter(live_predictor, coffee.image, **start)
    live.set_state({**change, "request": 1})
    assert live.used_mask_input is reuse
    assert (live_predictor.predict_calls[-1]["mask_input"] is not None) is reuse


def test_reuse_logits_can_be_turned_off(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, reuse_logits=False)
    live.set_state({"points": [[540.0, 210.0]], "labels": [1], "request": 1})
    assert live_predictor.predict_calls[-1]["mask_input"] is None


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


@pytest.mark.parametrize("threads", [None, 1, 2])
def test_decoder_threads_are_given_back(
    live_predictor: CountingPredictor, coffee: samkit.Sample, threads: int | None
) -> None:
    before = torch.get_num_threads()
    live = LiveSegmenter(
        live_predictor, coffee.image, box=coffee.default_box, decoder_threads=threads
    )
    live.set_state({"box": [470.0, 140.0, 600.0, 268.0], "request": 1})
    assert torch.get_num_threads() == before
    assert _iou(live.mask, coffee.ground_truth[coffee.target]) >= 0.85


def test_single_mask(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, multimask=False)
    assert live.masks.shape == (1, *coffee.image.shape[:2])
    assert live.candidates == []


def test_the_same_prompt_again_does_not_predict(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    calls = len(live_predictor.predict_calls)
    live.set_state({"box": _xyxy(coffee), "request": 7})
    assert len(live_predictor.predict_calls) == calls
    assert live.answered == 7


def test_clear_removes_the_mask(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, points=[(5, 5)])
    live.clear()
    assert live.value == {"box": [], "points": [], "labels": []}
    assert live.mask is None and len(live.detections) == 0
    assert not _alpha(live.overlay).any()


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


def test_the_embedding_is_computed_once_per_image(
    live_predictor: CountingPredictor, coffee: samkit.Sample, astronaut: samkit.Sample
) -> None:
    first = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    assert live_predictor.set_image_calls == 1
    # another image on the same predictor, then back to the first widget
    LiveSegmenter(live_predictor, astronaut.image, box=astronaut.default_box)
    assert live_predictor.set_image_calls == 2
    first.set_state({"box": [470.0, 140.0, 606.0, 272.0], "request": 1})
    assert live_predictor.set_image_calls == 3
    assert _iou(first.mask, coffee.ground_truth[coffee.target]) >= 0.85


def test_embedded_reuses_the_embedding_set_by_hand(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live_predictor.set_image(coffee.image)
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, embedded=True)
    assert live_predictor.set_image_calls == 1  # only the call by hand
    assert _iou(live.mask, coffee.ground_truth[coffee.target]) >= 0.85


@pytest.mark.parametrize(
    ("image_set", "message"),
    [
        # nothing set yet
        (None, r"embedded=True, but the predictor holds no image, not this 640x480 image"),
        # an image of another size
        ((120, 160), r"embedded=True, but the predictor holds an image of 160x120, not this"),
    ],
)
def test_embedded_needs_the_image_set(
    live_predictor: CountingPredictor,
    coffee: samkit.Sample,
    image_set: tuple[int, int] | None,
    message: str,
) -> None:
    if image_set is not None:
        live_predictor.set_image(np.zeros((*image_set, 3), np.uint8))
    with pytest.raises(ValueError, match=message):
        LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, embedded=True)


# ------------------------------------------------------------------ bad values


@pytest.mark.parametrize(
    ("state", "message"),
    [
        # three numbers
        ({"box": [1, 2, 3]}, r"box must be \[x0, y0, x1, y1\]"),
        # a string
        ({"box": "10 10 50 50"}, r"box must be \[x0, y0, x1, y1\]"),
        # not a number
        ({"box": [1, 2, "a", 4]}, r"box\[2\] must be a number"),
        # NaN
        ({"box": [1, 2, float("nan"), 4]}, r"box\[2\] must be a finite number"),
        # x1 < x0
        ({"box": [50, 10, 20, 40]}, r"x1 > x0 and y1 > y0"),
        # wholly outside the image: refused with the message of samkit.prompts.clip_box
        (
            {"box": [700, 0, 800, 40]},
            r"box \[x_min, y_min, x_max, y_max\] = \[700, 0, 800, 40\] lies outside the "
            r"image of width 640 and height 480: no pixel of it is inside",
        ),
        # a point with three numbers
        ({"points": [[1, 2, 3]], "labels": [1]}, r"points\[0\] must be an \(x, y\) pair"),
        # a point outside the image
        ({"points": [[10, 900]], "labels": [1]}, r"points\[0\] must lie inside the 640x480"),
        # a label that is not 0 or 1
        ({"points": [[10, 10]], "labels": [2]}, r"labels\[0\] must be 1 \(include\) or 0"),
        # points not a list
        ({"points": 5}, r"points must be a list of \(x, y\) pairs"),
        # a candidate that does not exist
        (
            {"selected": 3},
            r"selected must be the index of one of the 3 candidate mask\(s\) \(0 to 2\)",
        ),
    ],
)
def test_bad_state_is_refused_and_nothing_changes(
    live_predictor: CountingPredictor,
    coffee: samkit.Sample,
    state: dict[str, Any],
    message: str,
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    before = (live.value, live.overlay, live.masks.copy())
    with pytest.raises(ValueError, match=message):
        live.set_state(state)
    assert (live.value, live.overlay) == before[:2]
    np.testing.assert_array_equal(live.masks, before[2])


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


# ------------------------------------------------------------------ the pieces


@pytest.mark.parametrize(
    "mask",
    [
        None,  # empty: fully transparent
        np.zeros((6, 8), bool),  # an empty mask
        np.pad(np.ones((4, 4), bool), ((1, 1), (2, 2))),  # a block
    ],
)
def test_overlay_is_the_mask_alone(mask: np.ndarray | None) -> None:
    image = _decode(mask_overlay_png(mask, 8, 6))
    assert image.mode == "P" and image.size == (8, 6)
    alpha = np.asarray(image.convert("RGBA"))[..., 3]
    expected = np.zeros((6, 8), bool) if mask is None else mask
    np.testing.assert_array_equal(alpha > 0, expected)


def test_a_large_mask_is_sent_at_display_size() -> None:
    mask = np.zeros((3000, 4000), bool)
    mask[:1500, :2000] = True  # the top-left quarter
    image = _decode(mask_overlay_png(mask, 4000, 3000))
    assert image.size == (1024, 768)
    alpha = np.asarray(image.convert("RGBA"))[..., 3] > 0
    assert alpha[:384, :512].all() and not alpha[384:].any() and not alpha[:, 512:].any()


def test_front_end_is_a_plain_module_without_imports() -> None:
    assert "export default" in LIVE_JS
    # no CDN, no build step: the module imports nothing
    assert not re.search(r"^\s*import\s", LIVE_JS, re.MULTILINE)
    assert "http://" not in LIVE_JS.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in LIVE_JS


def test_repr_is_short(live_predictor: CountingPredictor, coffee: samkit.Sample) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    text = repr(live)
    assert len(text) < 200 and "base64" not in text
    assert text.startswith("LiveSegmenter(image 640x480, box=[475.0, 145.0, 604.0, 270.0]")


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
