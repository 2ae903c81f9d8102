"""The display size and the mask overlay PNG (``samkit/live/overlay.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from samkit.live import display_size, mask_overlay_png
from samkit.live.overlay import image_for_display

from .support import decode


@pytest.mark.parametrize(
    "mask",
    [
        None,  # empty: fully transparent
        np.zeros((6, 8), bool),  # an empty mask
        np.pad(np.ones((4, 4), bool), ((1, 1), (2, 2))),  # a block
    ],
)
def test_overlay_is_the_mask_alone(mask: np.ndarray | None) -> None:
    image = decode(mask_overlay_png(mask, 8, 6))
    assert image.mode == "P" and image.size == (8, 6)
    alpha = np.asarray(image.convert("RGBA"))[..., 3]
    expected = np.zeros((6, 8), bool) if mask is None else mask
    np.testing.assert_array_equal(alpha > 0, expected)


def test_a_large_mask_is_sent_at_display_size() -> None:
    mask = np.zeros((3000, 4000), bool)
    mask[:1500, :2000] = True  # the top-left quarter
    image = decode(mask_overlay_png(mask, 4000, 3000))
    assert image.size == (1024, 768)
    alpha = np.asarray(image.convert("RGBA"))[..., 3] > 0
    assert alpha[:384, :512].all() and not alpha[384:].any() and not alpha[:, 512:].any()


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((640, 480), 1024, (640, 480)),  # fits: unchanged
        ((4000, 3000), 1024, (1024, 768)),  # landscape, scaled down
        ((300, 3000), 1024, (102, 1024)),  # portrait
        ((5000, 2), 1024, (1024, 1)),  # never below one pixel
    ],
)
def test_display_size(size: tuple[int, int], max_side: int, expected: tuple[int, int]) -> None:
    assert display_size(*size, max_side=max_side) == expected


def test_image_for_display_shrinks_only_a_large_image() -> None:
    small = np.zeros((48, 64, 3), np.uint8)
    assert image_for_display(small) is small
    large = np.full((1500, 2000, 3), 200, np.uint8)
    shown = image_for_display(large)
    assert shown.shape == (768, 1024, 3) and shown.dtype == np.uint8
    assert (shown == 200).all()
