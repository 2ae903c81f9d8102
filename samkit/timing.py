"""Timing a block of code, the same way on a CPU and on a GPU."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


@dataclass
class Timing:
    """What :func:`stopwatch` measured.

    Attributes:
        label: What was timed.
        milliseconds: The wall-clock time in milliseconds (``nan`` while running).
    """

    label: str
    milliseconds: float = float("nan")

    def __str__(self) -> str:
        return f"{self.label}: {self.milliseconds:.1f} ms"


@contextmanager
def stopwatch(label: str, echo: bool = True) -> Iterator[Timing]:
    """Time a block of code in milliseconds, waiting for the GPU to finish its work.

    CUDA runs asynchronously, so the GPU is synchronised before the clock stops;
    otherwise ``set_image`` on a GPU would look instant.

    Args:
        label: What is being timed, printed before the time.
        echo: Print ``"<label>: 12.3 ms"`` when the block ends.

    Yields:
        A :class:`Timing` whose ``milliseconds`` is filled in when the block ends.

    Raises:
        ValueError: If ``label`` is not a string.

    Example:
        ```python
        with samkit.stopwatch("set_image"):
            predictor.set_image(image)
        ```
    """
    if not isinstance(label, str):
        raise ValueError(f"label must be a string, but got {type(label).__name__}")
    timing = Timing(label)
    _synchronize()
    start = time.perf_counter()
    yield timing
    _synchronize()
    timing.milliseconds = (time.perf_counter() - start) * 1000.0
    if echo:
        print(timing)


def _synchronize() -> None:
    """Wait for queued CUDA work, when there is a GPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
