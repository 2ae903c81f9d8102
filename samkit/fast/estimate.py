"""How long the automatic mask generator will take on this machine, measured, in Spanish.

A notebook prints :func:`estimate_line` before a cell that takes long: it times one
embedding and a small grid of points here (one encoder pass: the grid finds the
embedding remembered), and scales the points to the grid asked for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from segment_anything.modeling import Sam

from samkit.amg.embeddings import set_image_once
from samkit.fast.amg import FastMaskGenerator
from samkit.shapes import make_scene

#: The grid timed to measure the decoder's speed (points per side).
PROBE_SIDE = 4


@dataclass(frozen=True)
class Estimate:
    """A measured estimate of one automatic-mask run.

    Attributes:
        embed_s: Seconds of one image embedding here.
        per_point_s: Seconds of the decoder per grid point here.
        points: The points of the grid the estimate is for.
    """

    embed_s: float
    per_point_s: float
    points: int

    @property
    def seconds(self) -> float:
        """The estimated seconds of the whole run: one embedding and every point."""
        return self.embed_s + self.points * self.per_point_s

    def line(self) -> str:
        """The estimate as one Spanish line for the learner."""
        total = self.seconds
        when = f"{total:.0f} s" if total < 90 else f"{total / 60:.1f} min"
        return (
            f"En esta máquina, esta celda tarda unos {when}: el embedding "
            f"{self.embed_s:.1f} s y {self.points} puntos a {self.per_point_s * 1000:.0f} ms "
            "cada uno."
        )


def estimate(sam: Sam, points_per_side: int = 32) -> Estimate:
    """Time one embedding and a small grid here, and scale it to ``points_per_side``.

    Args:
        sam: The model, as the next cell will use it (``fast=True`` or not).
        points_per_side: The grid of the run to estimate.

    Returns:
        The estimate.

    Raises:
        ValueError: If ``points_per_side`` is not a whole number from 1 up.
    """
    if isinstance(points_per_side, bool) or not isinstance(points_per_side, int):
        raise ValueError(f"points_per_side must be an int, but got {points_per_side!r}")
    if points_per_side < 1:
        raise ValueError(f"points_per_side must be at least 1, but got {points_per_side}")
    image = make_scene(0, 240, 320).image
    generator = FastMaskGenerator(sam, points_per_side=PROBE_SIDE, progress=False)
    with torch.inference_mode():
        start = time.perf_counter()
        set_image_once(generator.predictor, image)  # the embedding, remembered
        embed_s = time.perf_counter() - start
        start = time.perf_counter()
        generator.generate(image)  # the points alone: it finds the embedding remembered
        points_s = time.perf_counter() - start
    return Estimate(embed_s, points_s / PROBE_SIDE**2, points_per_side**2)


def estimate_line(sam: Sam, points_per_side: int = 32) -> str:
    """One Spanish line: about how long automatic masks at this grid take here.

    Args:
        sam: The model, as the next cell will use it.
        points_per_side: The grid of the run to estimate.

    Returns:
        For example ``"En esta máquina, esta celda tarda unos 45 s: el embedding 2.1 s
        y 1024 puntos a 42 ms cada uno."``.

    Example:
        ```python
        print(samkit.fast.estimate_line(sam, points_per_side=32))
        ```
    """
    return estimate(sam, points_per_side).line()
