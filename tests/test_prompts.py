from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import samkit


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern that accepts only this exact message."""
    return f"^{re.escape(message)}$"


def box(x: Any = 10, y: Any = 20, width: Any = 30, height: Any = 40, **extra: Any) -> dict:
    return {"x": x, "y": y, "width": width, "height": height, "label": "", **extra}


@pytest.mark.parametrize(
    ("bboxes", "default", "expected"),
    [
        # nothing drawn yet: the empty case
        ([], None, np.zeros((0, 4))),
        # one box, as the widget gives it
        ([box()], None, [[10, 20, 40, 60]]),
        # two boxes keep their order
        ([box(), box(0, 0, 5, 5)], None, [[10, 20, 40, 60], [0, 0, 5, 5]]),
        # floats, numpy scalars and a zero-size box are fine; label is ignored
        ([box(1.5, np.int64(2), np.float32(0.5), 0, label="cat")], None, [[1.5, 2, 2, 2]]),
        # a tuple of boxes is accepted like a list
        ((box(),), None, [[10, 20, 40, 60]]),
        # empty with one default dict
        ([], box(1, 2, 3, 4), [[1, 2, 4, 6]]),
        # empty with a list of defaults
        ([], [box(1, 2, 3, 4), box()], [[1, 2, 4, 6], [10, 20, 40, 60]]),
        # empty with an empty default list
        ([], [], np.zeros((0, 4))),
        # the default is ignored once something is drawn
        ([box()], box(1, 2, 3, 4), [[10, 20, 40, 60]]),
    ],
)
def test_bboxes_to_xyxy(bboxes: Any, default: Any, expected: Any) -> None:
    result = samkit.bboxes_to_xyxy(bboxes, default=default)
    assert result.dtype == np.float32
    assert result.shape == np.shape(expected) == (len(result), 4)
    np.testing.assert_allclose(result, expected)


def test_bboxes_to_xyxy_empty_is_0_by_4() -> None:
    assert samkit.bboxes_to_xyxy([]).shape == (0, 4)


@pytest.mark.parametrize(
    ("bboxes", "default", "message"),
    [
        # not a list
        (box(), None, "bboxes must be a list of dicts with keys x, y, width, height, but got dict"),
        # None instead of a list
        (
            None,
            None,
            "bboxes must be a list of dicts with keys x, y, width, height, but got NoneType",
        ),
        # a box that is not a dict
        (
            [box(), [1, 2, 3, 4]],
            None,
            "box 1 must be a dict with keys x, y, width, height, but got list",
        ),
        # missing key
        ([box(), {"x": 1, "y": 2, "height": 3}], None, "box 1 is missing key 'width'"),
        # missing key on the first box
        ([{"y": 1, "width": 2, "height": 3}], None, "box 0 is missing key 'x'"),
        # negative width
        ([box(width=-5)], None, "box 0 key 'width' must be >= 0, but got -5"),
        # negative height
        ([box(), box(height=-0.5)], None, "box 1 key 'height' must be >= 0, but got -0.5"),
        # a string
        ([box(x="10")], None, "box 0 key 'x' must be a finite number, but got '10'"),
        # None
        ([box(y=None)], None, "box 0 key 'y' must be a finite number, but got None"),
        # bool is not a number here
        ([box(width=True)], None, "box 0 key 'width' must be a finite number, but got True"),
        # NaN
        (
            [box(height=float("nan"))],
            None,
            "box 0 key 'height' must be a finite number, but got nan",
        ),
        # infinity
        ([box(x=float("inf"))], None, "box 0 key 'x' must be a finite number, but got inf"),
        # a bad default dict is named as a default
        ([], {"x": 1}, "default box 0 is missing key 'y'"),
        # a bad default in a list
        ([], [box(), box(width=-1)], "default box 1 key 'width' must be >= 0, but got -1"),
        # a default of the wrong type
        ([], "box", "default must be a list of dicts with keys x, y, width, height, but got str"),
    ],
)
def test_bboxes_to_xyxy_bad_input(bboxes: Any, default: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.bboxes_to_xyxy(bboxes, default=default)


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        # the widget's dict becomes predict's 1-D box
        (box(), [10, 20, 40, 60]),
        # a zero-size box (a click without a drag)
        (box(3, 4, 0, 0), [3, 4, 3, 4]),
    ],
)
def test_bbox_to_sam_box(bbox: dict, expected: list[float]) -> None:
    result = samkit.prompts.bbox_to_sam_box(bbox)
    assert result.shape == (4,)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, expected)


def test_bbox_to_sam_box_bad_input() -> None:
    with pytest.raises(ValueError, match=exactly("box 0 is missing key 'height'")):
        samkit.prompts.bbox_to_sam_box({"x": 1, "y": 2, "width": 3})


@pytest.mark.parametrize(
    ("xyxy", "labels", "expected"),
    [
        # the empty case
        (np.zeros((0, 4)), None, []),
        # ints stay ints, label defaults to ""
        ([[10, 20, 40, 60]], None, [box()]),
        # one box of shape (4,)
        (np.array([10, 20, 40, 60]), "cat", [box(label="cat")]),
        # a label for every box; fractional values stay floats
        (
            [[0.5, 1, 2, 3], [0, 0, 1, 1]],
            ["a", "b"],
            [
                {"x": 0.5, "y": 1, "width": 1.5, "height": 2, "label": "a"},
                {"x": 0, "y": 0, "width": 1, "height": 1, "label": "b"},
            ],
        ),
    ],
)
def test_xyxy_to_bboxes(xyxy: Any, labels: Any, expected: list[dict]) -> None:
    result = samkit.xyxy_to_bboxes(xyxy, labels=labels)
    assert result == expected
    for bbox, wanted in zip(result, expected, strict=True):
        assert [type(bbox[k]) for k in bbox] == [type(wanted[k]) for k in wanted]


@pytest.mark.parametrize(
    "xyxy",
    [
        # nothing
        np.zeros((0, 4)),
        # whole pixels, as the widget draws
        np.array([[10, 20, 40, 60], [0, 0, 128, 96]]),
        # sub-pixel boxes
        np.array([[0.25, 0.5, 10.75, 3.5]]),
    ],
)
def test_xyxy_round_trip(xyxy: np.ndarray) -> None:
    np.testing.assert_allclose(
        samkit.bboxes_to_xyxy(samkit.xyxy_to_bboxes(xyxy)), xyxy.reshape(-1, 4)
    )


@pytest.mark.parametrize(
    ("xyxy", "labels", "message"),
    [
        # wrong shape
        (np.zeros((2, 3)), None, "xyxy must have shape (N, 4), but got shape (2, 3)"),
        # not numbers
        ([["a", "b", "c", "d"]], None, "xyxy must be numeric with shape (N, 4), but got list"),
        # NaN
        ([[0, 0, np.nan, 1]], None, "box 0 must hold finite numbers, but got [0.0, 0.0, nan, 1.0]"),
        # flipped box
        (
            [[0, 0, 1, 1], [5, 0, 1, 1]],
            None,
            "box 1 must have x_max >= x_min and y_max >= y_min, but got [5.0, 0.0, 1.0, 1.0]",
        ),
        # too few labels
        (
            [[0, 0, 1, 1], [0, 0, 2, 2]],
            ["a"],
            "labels must have one entry per box: 2 boxes, but got 1 labels",
        ),
    ],
)
def test_xyxy_to_bboxes_bad_input(xyxy: Any, labels: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.xyxy_to_bboxes(xyxy, labels=labels)


@pytest.mark.parametrize(
    ("include", "exclude", "coords", "labels"),
    [
        # no clicks at all: the empty case
        ([], (), np.zeros((0, 2)), []),
        # one include click
        ([(10, 20)], (), [[10, 20]], [1]),
        # include then exclude, in that order
        ([(10, 20), [1.5, 2]], [(5, 5)], [[10, 20], [1.5, 2], [5, 5]], [1, 1, 0]),
        # only exclude clicks
        ([], [(3, 4)], [[3, 4]], [0]),
        # numpy arrays of shape (N, 2), and an empty array
        (np.array([[1, 2], [3, 4]]), np.zeros((0, 2)), [[1, 2], [3, 4]], [1, 1]),
    ],
)
def test_points_to_prompt(include: Any, exclude: Any, coords: Any, labels: list[int]) -> None:
    point_coords, point_labels = samkit.points_to_prompt(include, exclude)
    assert point_coords.dtype == np.float32
    assert point_coords.shape == (len(labels), 2)
    assert point_labels.dtype == np.int32
    assert point_labels.shape == (len(labels),)
    np.testing.assert_allclose(point_coords, np.reshape(coords, (-1, 2)))
    assert point_labels.tolist() == labels


@pytest.mark.parametrize(
    ("include", "exclude", "message"),
    [
        # not a list
        ("10,20", (), "include must be a list of (x, y) pairs, but got str"),
        # a click with three numbers
        ([(1, 2, 3)], (), "include point 0 must be an (x, y) pair, but got (1, 2, 3)"),
        # a bare number instead of a pair
        ([(1, 2), 5], (), "include point 1 must be an (x, y) pair, but got 5"),
        # a non-numeric coordinate in the exclude list
        ([], [(1, "y")], "exclude point 0 coordinate 'y' must be a finite number, but got 'y'"),
        # NaN
        ([(np.nan, 1)], (), "include point 0 coordinate 'x' must be a finite number, but got nan"),
        # an array of the wrong shape
        (np.zeros((2, 3)), (), "include must have shape (N, 2), but got shape (2, 3)"),
    ],
)
def test_points_to_prompt_bad_input(include: Any, exclude: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.points_to_prompt(include, exclude)


def test_points_drive_the_real_predictor(predictor: Any) -> None:
    coords, labels = samkit.points_to_prompt([(30, 20)], exclude=[(100, 80)])
    masks, scores, _ = predictor.predict(
        point_coords=coords, point_labels=labels, multimask_output=False
    )
    assert masks.shape == (1, 96, 128)
    assert scores.shape == (1,)


def test_widget_box_drives_the_real_predictor(predictor: Any) -> None:
    masks, _, _ = predictor.predict(
        box=samkit.prompts.bbox_to_sam_box(box(20, 10, 50, 40)), multimask_output=True
    )
    assert masks.shape == (3, 96, 128)
