from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samkit import checks


@pytest.mark.parametrize(
    ("value", "finite"),
    [
        (0, True),
        (1.5, True),
        (np.float32(2.0), True),
        (np.int64(-3), True),
        (float("nan"), False),
        (float("inf"), False),
        (np.float64("-inf"), False),
        (10**400, False),  # no float holds it
        (True, False),  # a bool is no number
        (np.bool_(True), False),
        ("1", False),
        (None, False),
    ],
)
def test_is_finite_number(value: Any, finite: bool) -> None:
    assert checks.is_finite_number(value) is finite


def test_finite_number_says_what_arrived() -> None:
    assert checks.finite_number(np.float32(0.25), "opacity") == 0.25
    with pytest.raises(ValueError, match=r"^opacity must be a finite number, but got nan$"):
        checks.finite_number(float("nan"), "opacity")
    with pytest.raises(ValueError, match=r"^x must be a finite number, but got 1000.*\.\.\.$"):
        checks.finite_number(10**400, "x")


def test_number_in_range() -> None:
    assert checks.number_in_range(1, "iou", 0, 1) == 1.0
    with pytest.raises(ValueError, match=r"^iou must be a number from 0 to 1, but got 1\.5$"):
        checks.number_in_range(1.5, "iou", 0, 1)


def test_positive_number() -> None:
    assert checks.positive_number(3, "timeout", unit="seconds") == 3.0
    message = "timeout must be a positive number of seconds, but got 0"
    with pytest.raises(ValueError, match=f"^{message}$"):
        checks.positive_number(0, "timeout", unit="seconds")
    with pytest.raises(ValueError, match=r"^n must be a positive number, but got 'a'$"):
        checks.positive_number("a", "n")


def test_short_cuts_long_reprs() -> None:
    assert checks.short("abc") == "'abc'"
    assert checks.short("x" * 100, 40) == repr("x" * 100)[:37] + "..."
    assert len(checks.short(list(range(100)))) == 60


def test_shape_text() -> None:
    assert checks.shape_text((None, 2)) == "(N, 2)"
    assert checks.shape_text((4,)) == "(4,)"


def test_rgb_image() -> None:
    image = np.zeros((2, 3, 3), np.uint8)
    assert checks.rgb_image(image) is image
    expected = "image must be an RGB uint8 np.ndarray of shape (H, W, 3), but got "
    with pytest.raises(ValueError, match="^" + re.escape(expected + "list")):
        checks.rgb_image([[0]])
    wrong = expected + "dtype float32 and shape (2, 3, 3)"
    with pytest.raises(ValueError, match="^" + re.escape(wrong)):
        checks.rgb_image(image.astype(np.float32))
    with pytest.raises(ValueError, match=re.escape("shape (0, 3, 3)")):
        checks.rgb_image(np.zeros((0, 3, 3), np.uint8))


def test_file_path() -> None:
    assert checks.file_path("a/b.JSON", suffix=".json") == Path("a/b.JSON")
    with pytest.raises(ValueError, match=r"^path must be a file path, but got ' '$"):
        checks.file_path(" ")
    with pytest.raises(ValueError, match=r"^out must end in \.json, but got 'b\.txt'$"):
        checks.file_path("a/b.txt", "out", suffix=".json")
