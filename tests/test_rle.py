"""samkit.rle on its own; the COCO files that use it are tested in test_export.py."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from samkit import rle


def test_masks_round_trip() -> None:
    masks = np.random.default_rng(0).random((3, 7, 5)) > 0.5
    encoded = rle.masks_to_rle(masks)
    assert [r["size"] for r in encoded] == [[7, 5]] * 3
    np.testing.assert_array_equal(rle.rle_to_masks(encoded), masks)


def test_rle_runs_read_what_pycocotools_writes() -> None:
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:5] = True
    (encoded,) = rle.masks_to_rle(mask[np.newaxis])
    runs = rle.rle_runs(encoded["counts"])
    assert int(runs.sum()) == 24
    assert int(runs[1::2].sum()) == int(
        coco_mask.area({**encoded, "counts": encoded["counts"].encode()})
    )


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ("\x7f", r"character '\\x7f' at position 0 is not part of the code"),
        ("0`", "it ends in the middle of a run"),
    ],
)
def test_corrupt_counts_are_named(counts: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rle.rle_runs(counts)


def test_check_rle_refuses_counts_of_another_size() -> None:
    (encoded,) = rle.masks_to_rle(np.ones((1, 2, 2), bool))
    with pytest.raises(ValueError, match=r"^mask 0: cannot decode RLE counts: they describe 4"):
        rle.check_rle({"size": [3, 3], "counts": encoded["counts"]}, "mask 0")


def test_masks_of_refuses_what_holds_no_masks() -> None:
    with pytest.raises(ValueError, match=r"^expected sv.Detections with masks or a bool array"):
        rle.masks_of([1, 2])
