"""The image's embedding, computed once per image and predictor (``samkit/live/embedding.py``)."""

from __future__ import annotations

import numpy as np
import pytest

import samkit
from samkit.live import LiveSegmenter
from samkit.live.embedding import held_embedding, image_digest, remember_embedding

from .support import CountingPredictor, iou


@pytest.mark.slow
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
    assert iou(first.mask, coffee.ground_truth[coffee.target]) >= 0.85


@pytest.mark.slow
def test_embedded_reuses_the_embedding_set_by_hand(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live_predictor.set_image(coffee.image)
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, embedded=True)
    assert live_predictor.set_image_calls == 1  # only the call by hand
    assert iou(live.mask, coffee.ground_truth[coffee.target]) >= 0.85


@pytest.mark.slow
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


def test_the_digest_tells_images_apart() -> None:
    image = np.zeros((4, 4, 3), np.uint8)
    other = image.copy()
    other[0, 0, 0] = 1
    assert image_digest(image) == image_digest(image.copy())
    assert image_digest(image) != image_digest(other)
    assert len(image_digest(image)) == 32


def test_a_predictor_without_weak_references_is_not_remembered() -> None:
    # a plain tuple cannot be weakly referenced: nothing remembered, nothing raised
    remember_embedding((), "features", "digest")
    assert held_embedding(()) is None


def test_a_predictor_is_remembered_with_its_image(live_predictor: CountingPredictor) -> None:
    remember_embedding(live_predictor, "features", "digest")
    assert held_embedding(live_predictor) == ("features", "digest")
