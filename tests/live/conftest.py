"""Fixtures of the live widget's tests: the bundled ``shapes`` model and two scenes."""

from __future__ import annotations

from typing import Any

import pytest

import samkit

from .support import CountingPredictor


@pytest.fixture(scope="module")
def sam() -> Any:
    return samkit.load_sam("shapes", device="cpu")


@pytest.fixture
def live_predictor(sam: Any) -> CountingPredictor:
    return CountingPredictor(sam)


@pytest.fixture(scope="module")
def coffee() -> samkit.Sample:
    return samkit.sample_image("coffee", model_type="shapes")


@pytest.fixture(scope="module")
def astronaut() -> samkit.Sample:
    return samkit.sample_image("astronaut", model_type="shapes")
