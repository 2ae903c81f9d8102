"""Fixtures of the fast path's tests: an empty cache, counted conversions."""

from __future__ import annotations

from pathlib import Path

import pytest

from samkit.fast import encoder


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights directory (SAMKIT_HOME), so each test starts without a cache.

    The precision is pinned to float32, the same on every CPU; the int8 tests set it.
    """
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "f32")
    return tmp_path / "home"


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of ``samkit.fast.encoder.<name>`` (one entry per call); it still runs."""
    calls: list[int] = []
    original = getattr(encoder, name)

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(encoder, name, counting)
    return calls


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the encoder conversions."""
    return _count_calls(monkeypatch, "convert_openvino")


@pytest.fixture
def quantizations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the int8 quantizations."""
    return _count_calls(monkeypatch, "quantize_int8")
