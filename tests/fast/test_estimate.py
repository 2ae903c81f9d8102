"""The measured estimate of an automatic-mask run, and its Spanish line."""

from __future__ import annotations

import re

import numpy as np
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


@pytest.mark.slow
def test_the_image_given_is_embedded_once_for_the_estimate_and_the_run(shapes_model: Sam) -> None:
    image = samkit.shapes.make_scene(21, 120, 160).image
    runs: list[int] = []
    hook = shapes_model.image_encoder.register_forward_hook(lambda *args: runs.append(1))
    try:
        found = estimate.estimate(shapes_model, points_per_side=8, image=image)
        assert runs == [1], "the estimate embedded the image more than once"
        settings = samkit.amg_settings("shapes", points_per_side=8)
        records = samkit.FastMaskGenerator(shapes_model, progress=False, **settings).generate(image)
    finally:
        hook.remove()
    assert runs == [1], "the run embedded the image again"
    assert records, "the run found the shapes with the remembered embedding"
    assert found.embedded and found.seconds == pytest.approx(64 * found.per_point_s)
    line = found.line()
    assert re.fullmatch(
        r"En esta máquina, esta celda tarda unos \d+ s: 64 puntos a \d+ ms cada uno \(el "
        r"embedding de la imagen, \d+\.\d s, ya quedó calculado\)\.",
        line,
    ), line


def test_a_bad_image_is_refused(shapes_model: Sam) -> None:
    with pytest.raises(ValueError, match="image"):
        estimate.estimate_line(shapes_model, 4, image=np.zeros((8, 8), np.float32))


def test_long_estimates_are_in_minutes() -> None:
    line = estimate.Estimate(embed_s=10.0, per_point_s=0.1, points=1024).line()
    assert line.startswith("En esta máquina, esta celda tarda unos 1.9 min: el embedding 10.0 s")


@pytest.mark.parametrize("side", [0, -2, 2.5, True])
def test_bad_grid_is_refused(shapes_model: Sam, side: object) -> None:
    with pytest.raises(ValueError, match="points_per_side must be"):
        estimate.estimate_line(shapes_model, side)  # type: ignore[arg-type]
