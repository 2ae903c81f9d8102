from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import supervision as sv

import samkit


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def rect(y0: int, y1: int, x0: int, x1: int, shape: tuple[int, int] = (10, 10)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def detections_of(masks: list[np.ndarray], confidence: list[float] | None = None) -> sv.Detections:
    stack = np.array(masks, dtype=bool).reshape(-1, 10, 10)
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(stack).astype(np.float32).reshape(-1, 4),
        mask=stack,
        confidence=None if confidence is None else np.array(confidence, dtype=np.float32),
        data={"name": np.array([f"m{i}" for i in range(len(masks))], dtype=object)},
    )


# Areas 4, 16, 1, 16: the two 16s tie.
A, B, C, D = rect(0, 2, 0, 2), rect(0, 4, 0, 4), rect(9, 10, 9, 10), rect(5, 9, 5, 9)


@pytest.mark.parametrize(
    ("descending", "expected"),
    [
        # largest first, ties in their original order (B before D)
        (True, [1, 3, 0, 2]),
        # smallest first, ties in their original order
        (False, [2, 0, 1, 3]),
    ],
)
def test_sort_by_area_each_input_kind(descending: bool, expected: list[int]) -> None:
    masks = [A, B, C, D]
    as_list = samkit.masks.sort_by_area(masks, descending=descending)
    assert all(got is masks[i] for got, i in zip(as_list, expected, strict=True))
    as_array = samkit.masks.sort_by_area(np.array(masks), descending=descending)
    np.testing.assert_array_equal(as_array, np.array(masks)[expected])
    detections = samkit.masks.sort_by_area(detections_of(masks), descending=descending)
    assert detections.data["name"].tolist() == [f"m{i}" for i in expected]
    np.testing.assert_array_equal(detections.mask, np.array(masks)[expected])


@pytest.mark.parametrize(
    "empty",
    [
        # an empty list
        [],
        # an empty (0, H, W) array
        np.zeros((0, 10, 10), dtype=bool),
        # empty detections
        sv.Detections.empty(),
    ],
)
def test_sort_by_area_empty(empty: Any) -> None:
    assert len(samkit.masks.sort_by_area(empty)) == 0


def test_sort_by_area_on_real_amg_output(amg_detections: sv.Detections) -> None:
    smallest_first = samkit.masks.sort_by_area(amg_detections, descending=False)
    areas = smallest_first.mask.sum(axis=(1, 2))
    assert (np.diff(areas) >= 0).all()
    assert set(smallest_first.data) == set(amg_detections.data)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # detections without masks
        (
            sv.Detections(xyxy=np.zeros((1, 4))),
            "detections have no masks (detections.mask is None); "
            "build them with amg_to_detections or prediction_to_detections",
        ),
        # a 4-D array
        (
            np.zeros((1, 1, 2, 2), dtype=bool),
            "masks must have shape (N, H, W), but got shape (1, 1, 2, 2)",
        ),
        # float masks (logits?)
        (
            np.zeros((1, 2, 2), dtype=np.float32),
            "masks must be boolean (or integer 0/1), but got dtype float32",
        ),
        # masks of different sizes
        (
            [A, np.zeros((3, 3), bool)],
            "masks must be 2D arrays of one shape (H, W), but got shapes (10, 10), (3, 3)",
        ),
        # the generator's dicts instead of masks
        (
            {"segmentation": A},
            "expected sv.Detections, an (N, H, W) array or a list of (H, W) masks, but got dict",
        ),
    ],
)
def test_sort_by_area_bad_input(value: Any, message: str) -> None:
    if isinstance(value, sv.Detections):
        # detections without masks sort by box area; stack_masks is what refuses them
        with pytest.raises(ValueError, match=exactly(message)):
            samkit.masks.stack_masks(value)
        return
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.masks.sort_by_area(value)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # identical
        (A, A, 1.0),
        # disjoint
        (A, C, 0.0),
        # A inside B: 4 / 16
        (A, B, 0.25),
        # two empty masks: 0, not NaN
        (np.zeros((10, 10), bool), np.zeros((10, 10), bool), 0.0),
        # integer 0/1 masks are accepted
        (A.astype(np.uint8), B.astype(np.int64), 0.25),
    ],
)
def test_mask_iou_single(a: np.ndarray, b: np.ndarray, expected: float) -> None:
    result = samkit.masks.mask_iou(a, b)
    assert isinstance(result, float)
    assert result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # many against many
        (np.array([A, B]), np.array([A, C, D]), [[1, 0, 0], [0.25, 0, 0]]),
        # one against many
        (A, np.array([A, B]), [[1, 0.25]]),
        # the empty case
        (np.zeros((0, 10, 10), bool), np.array([A]), np.zeros((0, 1))),
    ],
)
def test_mask_iou_batch(a: np.ndarray, b: np.ndarray, expected: Any) -> None:
    result = samkit.masks.mask_iou(a, b)
    assert result.shape == np.shape(expected)
    np.testing.assert_allclose(result, expected)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        # sizes differ
        (
            A,
            np.zeros((5, 5), bool),
            "masks a and b must have the same (H, W), but got (10, 10) and (5, 5)",
        ),
        # a 1-D mask
        (np.zeros(4, bool), A, "mask a must have shape (H, W) or (N, H, W), but got shape (4,)"),
        # float mask
        (A, B.astype(float), "mask b must be boolean (or integer 0/1), but got dtype float64"),
    ],
)
def test_mask_iou_bad_input(a: Any, b: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.masks.mask_iou(a, b)


# Three near-duplicates of one object (IoU with BIG: 0.81, 0.9) and one other object.
BIG = rect(0, 10, 0, 10)  # 100 px
MID = rect(0, 9, 0, 10)  # 90 px, IoU with BIG 0.9
SMALL = rect(0, 9, 0, 9)  # 81 px, IoU with BIG 0.81, with MID 0.9
OTHER = rect(0, 3, 0, 3, shape=(10, 10))  # 9 px, IoU with the rest <= 0.11


@pytest.mark.parametrize(
    ("keep", "confidence", "threshold", "expected"),
    [
        # the seed's choice: the smallest of each group
        ("smallest", None, 0.8, ["m2", "m3"]),
        # the largest of each group
        ("largest", None, 0.8, ["m0", "m3"]),
        # the best-scored one, whatever its size
        ("best", [0.1, 0.9, 0.5, 0.3], 0.8, ["m1", "m3"]),
        # a stricter threshold: SMALL and BIG (0.81) are no longer duplicates
        ("smallest", None, 0.85, ["m0", "m2", "m3"]),
        # threshold 1: nothing is a duplicate
        ("largest", None, 1.0, ["m0", "m1", "m2", "m3"]),
    ],
)
def test_remove_duplicates(
    keep: Any, confidence: list[float] | None, threshold: float, expected: list[str]
) -> None:
    detections = detections_of([BIG, MID, SMALL, OTHER], confidence)
    result = samkit.remove_duplicates(detections, iou_threshold=threshold, keep=keep)
    assert result.data["name"].tolist() == expected


def test_remove_duplicates_empty() -> None:
    empty = samkit.amg_to_detections([])
    assert len(samkit.remove_duplicates(empty)) == 0


@pytest.mark.parametrize("keep", ["smallest", "largest", "best"])
def test_remove_duplicates_on_real_amg_output(amg_detections: sv.Detections, keep: Any) -> None:
    result = samkit.remove_duplicates(amg_detections, iou_threshold=0.8, keep=keep)
    assert 0 < len(result) < len(amg_detections)
    ious = samkit.masks.mask_iou(result.mask, result.mask)
    np.fill_diagonal(ious, 0)
    assert (ious <= 0.8).all()
    assert set(result.data) == set(amg_detections.data)


@pytest.mark.parametrize(
    ("detections", "kwargs", "message"),
    [
        # not detections
        ([BIG], {}, "detections must be sv.Detections, but got list"),
        # an unknown choice
        (
            detections_of([BIG]),
            {"keep": "first"},
            "keep must be one of smallest, largest, best, but got 'first'",
        ),
        # a threshold above 1
        (
            detections_of([BIG]),
            {"iou_threshold": 1.5},
            "iou_threshold must be a number in [0, 1], but got 1.5",
        ),
        # a threshold that is not a number
        (
            detections_of([BIG]),
            {"iou_threshold": "0.8"},
            "iou_threshold must be a number in [0, 1], but got '0.8'",
        ),
        # best without confidence
        (
            detections_of([BIG]),
            {"keep": "best"},
            'keep="best" needs detections.confidence, but it is None',
        ),
        # no masks
        (
            sv.Detections(xyxy=np.zeros((1, 4))),
            {},
            "detections have no masks (detections.mask is None); "
            "build them with amg_to_detections or prediction_to_detections",
        ),
    ],
)
def test_remove_duplicates_bad_input(detections: Any, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.remove_duplicates(detections, **kwargs)


@pytest.mark.parametrize(
    ("count", "max_cols", "expected"),
    [
        # nothing to show
        (0, 8, (0, 0)),
        # one
        (1, 8, (1, 1)),
        # seven fit in one row
        (7, 8, (1, 7)),
        # seven, four wide
        (7, 4, (2, 4)),
        # exactly full rows
        (16, 8, (2, 8)),
        # a hundred
        (100, 8, (13, 8)),
        # one column
        (3, 1, (3, 1)),
        # numpy integers are integers
        (np.int64(9), 8, (2, 8)),
    ],
)
def test_grid_shape(count: int, max_cols: int, expected: tuple[int, int]) -> None:
    rows, cols = samkit.masks.grid_shape(count, max_cols=max_cols)
    assert (rows, cols) == expected
    assert rows * cols >= count
    assert count == 0 or (rows - 1) * cols < count


@pytest.mark.parametrize(
    ("count", "max_cols", "message"),
    [
        # negative
        (-1, 8, "count must be an integer >= 0, but got -1"),
        # a float
        (2.5, 8, "count must be an integer >= 0, but got 2.5"),
        # a bool
        (True, 8, "count must be an integer >= 0, but got True"),
        # zero columns
        (3, 0, "max_cols must be an integer >= 1, but got 0"),
    ],
)
def test_grid_shape_bad_input(count: Any, max_cols: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.masks.grid_shape(count, max_cols=max_cols)
