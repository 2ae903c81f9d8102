"""The measured estimate of an automatic-mask run, and its Spanish line."""

from __future__ import annotations

import re

import pytest
from segment_anything.modeling import Sam

import samkit
from samkit.fast import estimate


@pytest.fixture(scope="module")
def shapes_model() -> Sam:
    return samkit.load_sam("shapes", device="cpu")


@pytest.mark.slow
def test_estimate_scales_the_measured_grid(shapes_model: Sam) -> None:
    runs: list[int] = []
    hook = shapes_model.image_encoder.register_forward_hook(lambda *args: runs.append(1))
    try:
        found = estimate.estimate(shapes_model, points_per_side=8)
    finally:
        hook.remove()
    assert runs == [1], "the estimate embedded its image more than once"
    assert found.embed_s > 0 and found.per_point_s > 0 and found.points == 64
    assert found.seconds == pytest.approx(found.embed_s + 64 * found.per_point_s)
    line = found.line()
    assert re.fullmatch(
        r"En esta máquina, esta celda tarda unos \d+ s: el embedding \d+\.\d s y 64 puntos "
        r"a \d+ ms cada uno\.",
        line,
    ), line


def test_long_estimates_are_in_minutes() -> None:
    line = estimate.Estimate(embed_s=10.0, per_point_s=0.1, points=1024).line()
    assert line.startswith("En esta máquina, esta celda tarda unos 1.9 min: el embedding 10.0 s")


@pytest.mark.parametrize("side", [0, -2, 2.5, True])
def test_bad_grid_is_refused(shapes_model: Sam, side: object) -> None:
    with pytest.raises(ValueError, match="points_per_side must be"):
        estimate.estimate_line(shapes_model, side)  # type: ignore[arg-type]
