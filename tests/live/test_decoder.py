"""One prompt through SAM's decoder (``samkit/live/decoder.py``): ``mask_input`` reuse and
the decoder's threads, seen through the widget as the front end drives it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import samkit
from samkit.live import LiveSegmenter
from samkit.live.decoder import Answer, ShownPrompt, choose_decoder_threads, is_prefix

from .support import CountingPredictor, iou


@pytest.mark.slow
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


@pytest.mark.slow
def test_reuse_logits_can_be_turned_off(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box, reuse_logits=False)
    live.set_state({"points": [[540.0, 210.0]], "labels": [1], "request": 1})
    assert live_predictor.predict_calls[-1]["mask_input"] is None


@pytest.mark.slow
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
    assert iou(live.mask, coffee.ground_truth[coffee.target]) >= 0.85


# ------------------------------------------------------------------ the pieces alone


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ([], [], False),  # nothing added
        ([], [[1.0, 2.0]], True),  # a first point
        ([[1.0, 2.0]], [[1.0, 2.0], [3.0, 4.0]], True),  # one more
        ([[1.0, 2.0]], [[1.5, 2.0], [3.0, 4.0]], False),  # the first one moved
        ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0]], False),  # one removed
    ],
)
def test_is_prefix(old: list[list[float]], new: list[list[float]], expected: bool) -> None:
    assert is_prefix(old, new) is expected


@pytest.mark.parametrize(
    ("box", "points", "labels", "reused"),
    [
        ([1.0, 1.0, 9.0, 9.0], [[2.0, 2.0], [5.0, 5.0]], [1, 0], True),  # a point added
        ([1.0, 1.0, 9.0, 8.0], [[2.0, 2.0], [5.0, 5.0]], [1, 0], False),  # the box changed
        ([1.0, 1.0, 9.0, 9.0], [[2.0, 2.0], [5.0, 5.0]], [0, 0], False),  # a label flipped
        ([1.0, 1.0, 9.0, 9.0], [[2.0, 2.0]], [1], False),  # the same prompt
    ],
)
def test_shown_prompt_gives_its_logits_only_when_points_are_added(
    box: list[float], points: list[list[float]], labels: list[int], reused: bool
) -> None:
    logits = np.arange(12, dtype=np.float32).reshape(3, 4)
    shown = ShownPrompt(box=[1.0, 1.0, 9.0, 9.0], points=[[2.0, 2.0]], labels=[1], logits=logits)
    mask_input = shown.mask_input_for(box, points, labels)
    if reused:
        assert mask_input is not None and mask_input.shape == (1, 3, 4)
        np.testing.assert_array_equal(mask_input[0], logits)
    else:
        assert mask_input is None


class _OnDevice:
    def __init__(self, device: str) -> None:
        self.device = device


@pytest.mark.parametrize(
    ("device", "asked", "threads"),
    [
        ("cpu", None, 1),  # a CPU model: one thread
        ("cuda:0", None, None),  # a GPU model: torch's own setting
        ("cpu", 3, 3),  # asked for
    ],
)
def test_choose_decoder_threads(device: str, asked: int | None, threads: int | None) -> None:
    assert choose_decoder_threads(_OnDevice(device), asked) == threads


def test_answer_empty_has_no_mask() -> None:
    answer = Answer.empty(6, 8)
    assert answer.masks.shape == (0, 6, 8) and answer.masks.dtype == bool
    assert answer.scores.shape == (0,) and answer.overlays == []
