"""``samkit.fast.accelerate`` through ``load_sam(fast=True)``: the backend, or the fallback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from segment_anything.modeling import ImageEncoderViT

import samkit
from samkit import fast
from samkit.fast import encoder


def test_missing_openvino_warns_once_and_keeps_torch(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # "import openvino" now fails
    with pytest.warns(fast.FastBackendWarning, match="OpenVINO is not installed") as record:
        sam = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    assert "pip install openvino nncf" in str(record[0].message)
    assert type(sam.image_encoder) is ImageEncoderViT
    assert sam.image_encoder.fast_info.backend == "torch"
    assert not (home / fast.CACHE_DIRNAME).exists()


def test_failing_backend_warns_once_with_the_reason(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("conversion exploded")

    monkeypatch.setattr(encoder, "convert_openvino", broken)
    with pytest.warns(fast.FastBackendWarning, match="conversion exploded") as record:
        sam = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    assert type(sam.image_encoder) is ImageEncoderViT


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_fast_must_be_a_bool(value: object) -> None:
    with pytest.raises(ValueError, match=r"fast must be True, False or .auto."):
        samkit.load_sam("shapes", device="cpu", fast=value)  # type: ignore[arg-type]
