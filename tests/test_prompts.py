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


@pytest.mark.slow
def test_points_drive_the_real_predictor(predictor: Any) -> None:
    coords, labels = samkit.points_to_prompt([(30, 20)], exclude=[(100, 80)])
    masks, scores, _ = predictor.predict(
        point_coords=coords, point_labels=labels, multimask_output=False
    )
    assert masks.shape == (1, 96, 128)
    assert scores.shape == (1,)


@pytest.mark.slow
def test_widget_box_drives_the_real_predictor(predictor: Any) -> None:
    masks, _, _ = predictor.predict(
        box=samkit.prompts.bbox_to_sam_box(box(20, 10, 50, 40)), multimask_output=True
    )
    assert masks.shape == (3, 96, 128)


# ------------------------------------------------------------------ boxes and the image


@pytest.mark.parametrize(
    ("bboxes", "default", "expected"),
    [
        # nothing drawn: still empty
        ([], None, np.zeros((0, 4))),
        # a box inside the 96x128 image is unchanged
        ([box(20, 10, 50, 40)], None, [[20, 10, 70, 50]]),
        # a box reaching past every border is clipped to the image
        ([box(-1000, -1000, 3000, 3000)], None, [[0, 0, 128, 96]]),
        # the reported box, as xyxy (-1000, -1000, 100, 100): clipped to (0, 0, 100, 96)
        ([box(-1000, -1000, 1100, 1100)], None, [[0, 0, 100, 96]]),
        # a default box is clipped the same way
        ([], box(100, 80, 50, 50), [[100, 80, 128, 96]]),
    ],
)
def test_boxes_outside_the_image_are_clipped(bboxes: Any, default: Any, expected: Any) -> None:
    result = samkit.bboxes_to_xyxy(bboxes, default=default, image_shape=(96, 128))
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, np.array(expected, np.float32).reshape(-1, 4))


@pytest.mark.parametrize(
    ("bboxes", "default", "message"),
    [
        # wholly above and left of the image: SAM would return a confident mask for it
        (
            [box(-1000, -1000, 100, 100)],
            None,
            "box 0 [x_min, y_min, x_max, y_max] = [-1000, -1000, -900, -900] lies outside the "
            "image of width 128 and height 96: no pixel of it is inside",
        ),
        # wholly right of the image (the second box)
        (
            [box(), box(128, 0, 10, 10)],
            None,
            "box 1 [x_min, y_min, x_max, y_max] = [128, 0, 138, 10] lies outside the image "
            "of width 128 and height 96: no pixel of it is inside",
        ),
        # a default that lies below the image is named as a default
        (
            [],
            box(0, 200, 5, 5),
            "default box 0 [x_min, y_min, x_max, y_max] = [0, 200, 5, 205] lies outside the "
            "image of width 128 and height 96: no pixel of it is inside",
        ),
    ],
)
def test_boxes_with_nothing_inside_the_image_are_refused(
    bboxes: Any, default: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.bboxes_to_xyxy(bboxes, default=default, image_shape=(96, 128))


@pytest.mark.parametrize(
    "image_shape",
    [
        (96,),  # one number
        (96, 128, 3),  # the whole image.shape, not image.shape[:2]
        (0, 128),  # an empty image
        (96.0, 128),  # floats
        "96x128",  # text
    ],
)
def test_image_shape_must_be_height_and_width(image_shape: Any) -> None:
    message = (
        "image_shape must be (H, W) with two positive integers, e.g. image.shape[:2], "
        f"but got {image_shape!r}"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.bboxes_to_xyxy([box()], image_shape=image_shape)


def test_image_shape_of_a_real_image_is_accepted(shapes_image: np.ndarray) -> None:
    # numpy's shape entries are plain ints; np.int64 values are accepted too
    shape = (np.int64(shapes_image.shape[0]), np.int64(shapes_image.shape[1]))
    for given in (shapes_image.shape[:2], shape):
        result = samkit.bboxes_to_xyxy([box(120, 90, 40, 40)], image_shape=given)
        np.testing.assert_array_equal(result, [[120, 90, 128, 96]])


# ------------------------------------------------------------------ float32 overflow


FLOAT32_RANGE = "within float32 range (about ±3.4e38)"


@pytest.mark.parametrize(
    ("bboxes", "message"),
    [
        # a float that is finite in float64 but inf in float32
        ([box(x=1e39)], f"box 0 key 'x' must be a number {FLOAT32_RANGE}, but got 1e+39"),
        # an int too large for any float (OverflowError before)
        (
            [box(width=10**400)],
            f"box 0 key 'width' must be a number {FLOAT32_RANGE}, "
            "but got 1000000000000000000000000000000000000...",
        ),
        # a negative one
        (
            [box(y=-(10**400))],
            f"box 0 key 'y' must be a number {FLOAT32_RANGE}, "
            "but got -100000000000000000000000000000000000...",
        ),
        # two values in range whose sum (x + width) is not
        (
            [box(x=3e38, width=3e38)],
            "box 0 reaches [3e+38, 20.0, 6e+38, 60.0], past float32 range (about ±3.4e38)",
        ),
    ],
)
def test_values_that_overflow_float32_are_refused(bboxes: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.bboxes_to_xyxy(bboxes)


@pytest.mark.parametrize(
    ("xyxy", "message"),
    [
        # 1e39 in a box to preset in the widget
        (
            [[0, 0, 1e39, 1]],
            f"box 0 must hold numbers {FLOAT32_RANGE}, but got [0.0, 0.0, 1e+39, 1.0]",
        ),
        # an int too large for any float
        (
            [[0, 0, 10**400, 1]],
            f"xyxy must hold finite numbers {FLOAT32_RANGE}, but holds an integer too large "
            "for any float",
        ),
    ],
)
def test_xyxy_values_that_overflow_float32_are_refused(xyxy: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.xyxy_to_bboxes(xyxy)


def test_click_values_that_overflow_float32_are_refused() -> None:
    message = f"include point 0 coordinate 'x' must be a number {FLOAT32_RANGE}, but got 1e+39"
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.points_to_prompt([(1e39, 2)])


# ------------------------------------------------------------------ labels


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        # a number for all boxes
        (
            5,
            "labels must be None, a string, or a list of one string per box, but got 5 (int)",
        ),
        # bytes would have become the label "97"
        (
            b"a",
            "labels must be None, a string, or a list of one string per box, but got b'a' (bytes)",
        ),
        # a list with None in it would have become the label "None"
        ([None], "label 0 must be a string, but got None (NoneType)"),
        # a number in the list
        (["cat", 3], "label 1 must be a string, but got 3 (int)"),
    ],
)
def test_xyxy_to_bboxes_refuses_labels_that_are_not_strings(labels: Any, message: str) -> None:
    xyxy = [[0, 0, 1, 1]] * (2 if isinstance(labels, list) and len(labels) == 2 else 1)
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.xyxy_to_bboxes(xyxy, labels=labels)


@pytest.mark.slow
def test_clipped_box_drives_the_real_predictor(predictor: Any, shapes_image: Any) -> None:
    """A box half outside the image gives the same masks as the part inside it."""
    clipped = samkit.bboxes_to_xyxy([box(-50, -40, 120, 90)], image_shape=shapes_image.shape[:2])[0]
    masks, scores, _ = predictor.predict(box=clipped, multimask_output=False)
    inside, inside_scores, _ = predictor.predict(
        box=np.array([0, 0, 70, 50], np.float32), multimask_output=False
    )
    np.testing.assert_array_equal(masks, inside)
    np.testing.assert_array_equal(scores, inside_scores)


@pytest.mark.parametrize(
    ("xyxy", "expected"),
    [
        # inside: unchanged
        ([10, 20, 30, 40], [10.0, 20.0, 30.0, 40.0]),
        # past every edge: the whole image
        ([-5, -5, 500, 500], [0.0, 0.0, 128.0, 96.0]),
        # touching the image from inside on its right edge
        ([100, 0, 128, 96], [100.0, 0.0, 128.0, 96.0]),
    ],
)
def test_clip_box(xyxy: list[float], expected: list[float]) -> None:
    assert samkit.prompts.clip_box(xyxy, (96, 128)) == expected


@pytest.mark.parametrize(
    ("xyxy", "where", "message"),
    [
        # touching the left edge from outside: no pixel inside
        (
            [-10, 0, 0, 10],
            "box",
            "box [x_min, y_min, x_max, y_max] = [-10, 0, 0, 10] lies outside the image of "
            "width 128 and height 96: no pixel of it is inside",
        ),
        # below the image, named as the caller names it
        (
            [0, 96.5, 10, 100],
            "box 3",
            "box 3 [x_min, y_min, x_max, y_max] = [0, 96.5, 10, 100] lies outside the image "
            "of width 128 and height 96: no pixel of it is inside",
        ),
    ],
)
def test_clip_box_refuses_a_box_wholly_outside(xyxy: list[float], where: str, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.prompts.clip_box(xyxy, (96, 128), where)
