"""A stand-in ``google.colab`` for tests that pretend to run in Colab."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest


def install_fake_colab(monkeypatch: pytest.MonkeyPatch, part: str, **attributes: Any) -> None:
    """Install ``google``, ``google.colab`` and ``google.colab.<part>`` for this test.

    ``part`` (``"drive"``, ``"output"``) gets ``attributes``; ``"google.colab" in
    sys.modules`` is then true, as in Colab.
    """
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    module = types.ModuleType(f"google.colab.{part}")
    for name, value in attributes.items():
        setattr(module, name, value)
    setattr(colab, part, module)
    google.colab = colab  # type: ignore[attr-defined]
    for name, installed in (("google", google), ("google.colab", colab), (module.__name__, module)):
        monkeypatch.setitem(sys.modules, name, installed)
