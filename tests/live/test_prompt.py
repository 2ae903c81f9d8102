"""The widget's prompt, checked (``samkit/live/prompt.py``): bad values are refused and
nothing changes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import samkit
from samkit.live import LiveSegmenter
from samkit.live.prompt import (
    PromptError,
    check_box,
    check_labels,
    check_points,
    check_selected,
    check_value,
    finite_number,
    preset_prompt,
)

from .support import CountingPredictor


@pytest.mark.slow
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


# ------------------------------------------------------------------ the checks alone


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, 3.0),  # an int
        (np.float32(2.5), 2.5),  # a numpy float
    ],
)
def test_finite_number(value: Any, expected: float) -> None:
    assert finite_number(value, "x") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, r"x must be a number, but got True"),  # a bool is no number here
        ("1", r"x must be a number, but got '1'"),  # a string
        (float("inf"), r"x must be a finite number, but got inf"),  # infinite
    ],
)
def test_finite_number_refuses(value: Any, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        finite_number(value, "x")


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        (None, []),  # no box
        ([], []),  # an empty list
        (np.array([[1, 2, 30.04, 40]]), [1.0, 2.0, 30.0, 40.0]),  # (1, 4), rounded to 0.1
        ({"x": 1, "y": 2, "width": 10, "height": 20}, [1.0, 2.0, 11.0, 22.0]),  # widget dict
    ],
)
def test_check_box(box: Any, expected: list[float]) -> None:
    assert check_box(box, 64, 48) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((None, None, None, None), (None, None, None)),  # nothing preset
        ((None, [1, 2, 3, 4], [[5, 5]], None), ([1, 2, 3, 4], [[5, 5]], None)),  # keywords
        (({"points": [[5, 5]], "labels": [0]}, None, None, None), (None, [[5, 5]], [0])),
    ],
)
def test_preset_prompt(args: tuple[Any, ...], expected: tuple[Any, ...]) -> None:
    assert preset_prompt(*args) == expected


@pytest.mark.parametrize(
    ("value", "count", "ok"),
    [
        (0, 0, True),  # no candidates: 0 is still allowed
        (2, 3, True),  # the last of three
        (-1, 3, False),  # negative
        (1, 1, False),  # one past the end
    ],
)
def test_check_selected(value: int, count: int, ok: bool) -> None:
    if ok:
        assert check_selected(value, count) == value
    else:
        with pytest.raises(PromptError, match=r"selected must be the index of one of"):
            check_selected(value, count)


def test_prompt_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match=r"labels must be a list of 1 \(include\) and 0"):
        check_labels("1 0")
    with pytest.raises(ValueError, match=r"points\[0\] must be an \(x, y\) pair"):
        check_points(["ab"], 10, 10)
    with pytest.raises(ValueError, match="value must be a dict with keys"):
        check_value([1, 2])
