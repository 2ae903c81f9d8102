"""The fast path's warning: it points at the line outside samkit that asked for it."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import pytest

import samkit
from samkit.fast.info import FastBackendWarning, FastInfo, warn


def test_warn_called_from_outside_samkit_points_at_its_caller() -> None:
    with pytest.warns(FastBackendWarning, match="^fast=True: why$") as record:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        warn("fast=True: why")
    assert (record[0].filename, record[0].lineno) == (__file__, line)


def test_warning_through_load_sam_points_at_the_test(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # "import openvino" now fails
    with pytest.warns(FastBackendWarning) as record:
        samkit.load_sam("shapes", device="cpu", fast=True)
    assert [r.filename for r in record] == [__file__]


def test_fast_info_defaults() -> None:
    info = FastInfo("torch", "f32", "why")
    assert (info.cache_hit, info.seconds, info.mask_iou) == (False, 0.0, None)
    with pytest.raises(AttributeError):
        info.backend = "openvino"  # type: ignore[misc]
