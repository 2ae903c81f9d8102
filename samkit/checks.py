"""Checks of user input, in one place: numbers, ranges, shapes, images, file paths.

Every check returns the value it accepted (converted where it says so) or raises a
``ValueError`` whose message names the value, says what was expected and shows what
arrived: ``"<name> must be ..., but got ..."``.

Example:
    ```pycon
    >>> from samkit import checks
    >>> checks.finite_number(0.5, "opacity")
    0.5
    >>> checks.finite_number(float("nan"), "opacity")
    Traceback (most recent call last):
    ...
    ValueError: opacity must be a finite number, but got nan

    ```
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "file_path",
    "finite_number",
    "is_finite_number",
    "number_in_range",
    "positive_number",
    "rgb_image",
    "shape_text",
    "short",
]


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a mask's repr, or ``10**400``, is long)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number: Python's or NumPy's, never a ``bool``.

    An integer too large for a float (``10**400``) is not: SAM computes in floats.
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def finite_number(value: Any, name: str) -> float:
    """Return ``value`` as a float when it is a finite real number.

    Args:
        value: What arrived.
        name: How the message names it.

    Returns:
        ``float(value)``.

    Raises:
        ValueError: ``"<name> must be a finite number, but got <value>"``.
    """
    if not is_finite_number(value):
        raise ValueError(f"{name} must be a finite number, but got {short(value)}")
    return float(value)


def number_in_range(value: Any, name: str, low: float, high: float) -> float:
    """Return ``value`` as a float when it is a finite number from ``low`` to ``high``.

    Raises:
        ValueError: ``"<name> must be a number from <low> to <high>, but got <value>"``.
    """
    if not is_finite_number(value) or not low <= float(value) <= high:
        raise ValueError(f"{name} must be a number from {low} to {high}, but got {short(value)}")
    return float(value)


def positive_number(value: Any, name: str, unit: str = "") -> float:
    """Return ``value`` as a float when it is a finite number above 0.

    Args:
        value: What arrived.
        name: How the message names it.
        unit: What the number counts (``"seconds"``), said in the message.

    Raises:
        ValueError: ``"<name> must be a positive number [of <unit>], but got <value>"``.
    """
    if not is_finite_number(value) or not float(value) > 0:
        of = f" of {unit}" if unit else ""
        raise ValueError(f"{name} must be a positive number{of}, but got {short(value)}")
    return float(value)


def shape_text(shape: tuple[int | None, ...]) -> str:
    """A shape as messages write it: ``(None, 2)`` is ``(N, 2)``."""
    sizes = ["N" if size is None else str(size) for size in shape]
    return "(" + ", ".join(sizes) + ("," if len(sizes) == 1 else "") + ")"


def rgb_image(image: Any, name: str = "image") -> npt.NDArray[np.uint8]:
    """Return ``image`` unchanged if it is an RGB uint8 array, else raise.

    Args:
        image: The array to check.
        name: How the message names it.

    Returns:
        The same array, of shape `(H, W, 3)` and dtype uint8, with H and W above 0.

    Raises:
        ValueError: If it is not a numpy array of that shape and dtype.

    Example:
        ```pycon
        >>> import numpy as np
        >>> from samkit import checks
        >>> checks.rgb_image(np.zeros((2, 3, 3), np.uint8)).shape
        (2, 3, 3)

        ```
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(
            f"{name} must be an RGB uint8 np.ndarray of shape (H, W, 3), "
            f"but got {type(image).__name__}"
        )
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(
            f"{name} must be an RGB uint8 np.ndarray of shape (H, W, 3), "
            f"but got dtype {image.dtype} and shape {image.shape}"
        )
    return image


def file_path(path: object, name: str = "path", suffix: str | None = None) -> Path:
    """Return ``path`` as a ``Path`` when it is a non-blank path (ending in ``suffix``).

    Args:
        path: What arrived.
        name: How the message names it.
        suffix: The suffix the file must have (``".json"``), any case; ``None`` for any.

    Raises:
        ValueError: ``"<name> must be a file path, but got <path>"``, or
            ``"<name> must end in <suffix>, but got <file name>"``.
    """
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise ValueError(f"{name} must be a file path, but got {path!r}")
    target = Path(path)
    if suffix is not None and target.suffix.lower() != suffix:
        raise ValueError(f"{name} must end in {suffix}, but got {target.name!r}")
    return target
