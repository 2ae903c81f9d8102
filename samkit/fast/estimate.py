"""How long the automatic mask generator will take on this machine, measured, in Spanish.

A notebook prints :func:`estimate_line` before a cell that takes long: it times one
embedding and a small grid of points here (one encoder pass: the grid finds the
embedding remembered), and scales the points to the grid asked for. Given the image
the next cell segments, it embeds that one: the generator of the same model then finds
its embedding remembered (``samkit.amg.embeddings``), so the estimate costs no extra
encoder pass, and the line says the run is its points alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from segment_anything.modeling import Sam

from samkit.amg.embeddings import set_image_once
from samkit.checks import rgb_image
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
        embedded: Whether the image of the run is already embedded (and remembered), so
            that the run is its points alone.
    """

    embed_s: float
    per_point_s: float
    points: int
    embedded: bool = False

    @property
    def seconds(self) -> float:
        """The estimated seconds of the run: every point, and the embedding if not done."""
        points_s = self.points * self.per_point_s
        return points_s if self.embedded else self.embed_s + points_s

    def line(self) -> str:
        """The estimate as one Spanish line for the learner."""
        total = self.seconds
        when = f"{total:.0f} s" if total < 90 else f"{total / 60:.1f} min"
        points = f"{self.points} puntos a {self.per_point_s * 1000:.0f} ms cada uno"
        if self.embedded:
            return (
                f"En esta máquina, esta celda tarda unos {when}: {points} (el embedding de "
                f"la imagen, {self.embed_s:.1f} s, ya quedó calculado)."
            )
        return (
            f"En esta máquina, esta celda tarda unos {when}: el embedding "
            f"{self.embed_s:.1f} s y {points}."
        )


def estimate(sam: Sam, points_per_side: int = 32, image: np.ndarray | None = None) -> Estimate:
    """Time one embedding and a small grid here, and scale it to ``points_per_side``.

    Args:
        sam: The model, as the next cell will use it (``fast=True`` or not).
        points_per_side: The grid of the run to estimate.
        image: The image the next cell segments, ``(H, W, 3)`` uint8 RGB: its embedding
            is timed and remembered for the generators of ``sam``, which then do not
            compute it again. ``None``: a small generated scene.

    Returns:
        The estimate.

    Raises:
        ValueError: If ``points_per_side`` is not a whole number from 1 up, or ``image``
            is not an RGB uint8 array.
    """
    if isinstance(points_per_side, bool) or not isinstance(points_per_side, int):
        raise ValueError(f"points_per_side must be an int, but got {points_per_side!r}")
    if points_per_side < 1:
        raise ValueError(f"points_per_side must be at least 1, but got {points_per_side}")
    probe = make_scene(0, 240, 320).image if image is None else rgb_image(image)
    generator = FastMaskGenerator(sam, points_per_side=PROBE_SIDE, progress=False)
    with torch.inference_mode():
        start = time.perf_counter()
        set_image_once(generator.predictor, probe)  # the embedding, remembered
        embed_s = time.perf_counter() - start
        start = time.perf_counter()
        generator.generate(probe)  # the points alone: it finds the embedding remembered
        points_s = time.perf_counter() - start
    return Estimate(embed_s, points_s / PROBE_SIDE**2, points_per_side**2, image is not None)


def estimate_line(sam: Sam, points_per_side: int = 32, image: np.ndarray | None = None) -> str:
    """One Spanish line: about how long automatic masks at this grid take here.

    Args:
        sam: The model, as the next cell will use it.
        points_per_side: The grid of the run to estimate.
        image: The image the next cell segments: embedded now and remembered, so the
            run is its points alone (see :func:`estimate`).

    Returns:
        For example ``"En esta máquina, esta celda tarda unos 45 s: el embedding 2.1 s
        y 1024 puntos a 42 ms cada uno."``, or with ``image``, ``"... unos 43 s: 1024
        puntos a 42 ms cada uno (el embedding de la imagen, 2.1 s, ya quedó calculado)."``.

    Example:
        ```python
        print(samkit.fast.estimate_line(sam, points_per_side=32, image=photo))
        ```
    """
    return estimate(sam, points_per_side, image).line()
