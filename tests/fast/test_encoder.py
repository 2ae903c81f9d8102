"""The CPU encoder on the bundled ``shapes`` model: the same embedding; reduced precision
tried, kept or refused, and cached with its verdict.

A full-size ``vit_b`` is checked where a notebook already converts it: notebook 2 on the
photo path (tests/test_notebooks.py) embeds the photo with OpenVINO float32 and with
PyTorch, and its printed relative difference must be under 1e-4."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

import samkit
from samkit.fast import cache, cpu, encoder, trial
from samkit.fast.info import FastBackendWarning
from samkit.fast.openvino import OpenVINOImageEncoder


def _embed(sam: torch.nn.Module, image: np.ndarray) -> torch.Tensor:
    predictor = SamPredictor(sam)  # type: ignore[arg-type]
    predictor.set_image(image)
    return predictor.features


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _predict(sam: torch.nn.Module, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, ...]:
    predictor = SamPredictor(sam)  # type: ignore[arg-type]
    predictor.set_image(image)
    return predictor.predict(box=box, multimask_output=False)


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_fast_shapes_gives_the_same_embedding_and_masks(home: Path) -> None:
    scene = samkit.shapes.make_scene(3, 240, 320)
    plain = samkit.load_sam("shapes", device="cpu")
    quick = samkit.load_sam("shapes", device="cpu", fast=True)
    assert isinstance(quick.image_encoder, OpenVINOImageEncoder)
    assert quick.image_encoder.fast_info.backend == "openvino"
    assert quick.image_encoder.fast_info.precision == "f32"
    with torch.inference_mode():
        assert _relative_error(_embed(quick, scene.image), _embed(plain, scene.image)) < 1e-4
        ious = []
        for box in scene.xyxy:
            ours, our_scores, _ = _predict(quick, scene.image, box)
            stock, stock_scores, _ = _predict(plain, scene.image, box)
            ious.append(samkit.masks.mask_iou(ours[0], stock[0]))
            np.testing.assert_allclose(our_scores, stock_scores, atol=1e-3)
    assert min(ious) > 0.99


def _manifest(home: Path, precision: str) -> dict[str, object]:
    (entry,) = (home / cache.CACHE_DIRNAME).glob(f"encoder-*-{precision}-v*")
    manifest: dict[str, object] = json.loads((entry / "manifest.json").read_text())
    return manifest


@pytest.mark.parametrize("precision", ["int8", "bf16"])
@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_reduced_precision_is_kept_when_its_masks_hold(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    conversions: list[int],
    quantizations: list[int],
    precision: str,
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", precision)
    monkeypatch.setattr(cpu, "cpu_reports_native_bf16", lambda: True)
    monkeypatch.setattr(trial, "MIN_MASK_IOU", 0.5)  # the shapes model's int8 is ~0.96
    quick = samkit.load_sam("shapes", device="cpu", fast=True)
    info = quick.image_encoder.fast_info
    assert (info.backend, info.precision, info.cache_hit) == ("openvino", precision, False)
    assert info.mask_iou is not None and 0.5 <= info.mask_iou <= 1.0
    assert f"{precision} masks match float32 with mean IoU {info.mask_iou:.4f}" in info.detail
    quantized = [1] if precision == "int8" else []  # bfloat16 is only compiled so
    assert (conversions, quantizations) == ([1], quantized)
    manifest = _manifest(home, precision)
    assert manifest["model"] is True
    assert manifest["mask_iou_mean"] == info.mask_iou
    # close to float32
    plain = samkit.load_sam("shapes", device="cpu")
    scene = samkit.shapes.make_scene(5, 240, 320)
    with torch.inference_mode():
        error = _relative_error(_embed(quick, scene.image), _embed(plain, scene.image))
        assert error < 0.2
        if precision == "int8":  # int8 computes something else than float32 on any CPU
            assert error > 1e-4
        ious = [
            samkit.masks.mask_iou(
                _predict(quick, scene.image, box)[0][0], _predict(plain, scene.image, box)[0][0]
            )
            for box in scene.xyxy
        ]
    assert np.mean(ious) > 0.9, ious
    # the second load reads the int8 model: nothing converted or quantized again
    again = samkit.load_sam("shapes", device="cpu", fast=True)
    assert again.image_encoder.fast_info.precision == precision
    assert again.image_encoder.fast_info.cache_hit
    assert again.image_encoder.fast_info.mask_iou == info.mask_iou
    assert (conversions, quantizations) == ([1], quantized)


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_int8_is_refused_when_its_masks_do_not_hold(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    conversions: list[int],
    quantizations: list[int],
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "int8")
    monkeypatch.setattr(trial, "MIN_MASK_IOU", 1.01)  # no int8 can reach it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a refusal is a decision, not a failure
        quick = samkit.load_sam("shapes", device="cpu", fast=True)
    info = quick.image_encoder.fast_info
    assert (info.backend, info.precision) == ("openvino", "f32")
    assert "int8 refused" in info.detail and "at least 1.01 needed" in info.detail
    assert (conversions, quantizations) == ([1], [1])
    # the verdict is cached without a model; the float32 conversion is cached beside it
    manifest = _manifest(home, "int8")
    assert manifest["model"] is False
    (int8_entry,) = (home / cache.CACHE_DIRNAME).glob("*-int8-*")
    assert {p.name for p in int8_entry.iterdir()} == {"manifest.json"}
    assert _manifest(home, "f32")["model"] is True
    plain = samkit.load_sam("shapes", device="cpu")
    scene = samkit.shapes.make_scene(5, 240, 320)
    with torch.inference_mode():
        assert _relative_error(_embed(quick, scene.image), _embed(plain, scene.image)) < 1e-4
    # the second load neither quantizes nor converts again
    again = samkit.load_sam("shapes", device="cpu", fast=True)
    assert again.image_encoder.fast_info.precision == "f32"
    assert again.image_encoder.fast_info.cache_hit
    assert (conversions, quantizations) == ([1], [1])


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_missing_nncf_warns_once_and_keeps_float32(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "int8")
    monkeypatch.setitem(sys.modules, "nncf", None)  # "import nncf" now fails
    with pytest.warns(FastBackendWarning, match="NNCF is not installed") as record:
        sam = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    assert "pip install openvino nncf" in str(record[0].message)
    assert record[0].filename == __file__  # the line that asked for it, not samkit's
    info = sam.image_encoder.fast_info
    assert (info.backend, info.precision) == ("openvino", "f32")
    assert "int8 not used" in info.detail


def _fake_probe(monkeypatch: pytest.MonkeyPatch, seconds: dict[str, float]) -> list[str]:
    """Make the probe report ``seconds`` per precision; returns the precisions timed."""
    timed: list[str] = []

    def probe(compiled: object, x: np.ndarray, precision: str) -> float:
        assert x.ndim == 4 and x.shape[:2] == (1, 3), x.shape  # one preprocessed image
        timed.append(precision)
        return seconds[precision]

    monkeypatch.setattr(encoder, "probe_seconds", probe)
    return timed


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_auto_refuses_a_bf16_that_is_slower_and_reuses_the_choice(
    home: Path, monkeypatch: pytest.MonkeyPatch, conversions: list[int]
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "auto")
    monkeypatch.setattr(cpu, "cpu_reports_native_bf16", lambda: True)  # it says so, but
    timed = _fake_probe(monkeypatch, {"f32": 1.0, "bf16": 7.0, "int8": 0.5})
    trials: list[int] = []
    agreement = trial.mask_agreement

    def counted(*args: Any) -> tuple[float, float]:
        trials.append(1)
        return agreement(*args)

    monkeypatch.setattr(encoder, "mask_agreement", counted)
    monkeypatch.setattr(trial, "MIN_MASK_IOU", 0.5)  # the shapes model's int8 is ~0.96
    quick = samkit.load_sam("shapes", device="cpu", fast=True)
    info = quick.image_encoder.fast_info
    assert (info.precision, info.cache_hit) == ("int8", False)  # faster and faithful
    assert "bf16 refused: not faster than f32 here, 7.00 s against 1.00 s in f32" in info.detail
    assert "int8 masks match float32" in info.detail
    assert sorted(timed) == ["bf16", "f32", "int8"]  # f32 timed once for both
    assert trials == [1]  # the slow bf16 never reached the mask trial
    assert _manifest(home, "bf16")["model"] is False
    assert _manifest(home, "int8")["probe_seconds"] == {"f32": 1.0, "int8": 0.5}
    # the second load reads the choice from the cache: nothing timed, tried or converted
    again = samkit.load_sam("shapes", device="cpu", fast=True)
    assert (again.image_encoder.fast_info.precision, again.image_encoder.fast_info.cache_hit) == (
        "int8",
        True,
    )
    assert (len(timed), trials, conversions) == (3, [1], [1])


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_auto_keeps_float32_when_nothing_is_faster(
    home: Path, monkeypatch: pytest.MonkeyPatch, quantizations: list[int]
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "auto")
    monkeypatch.setattr(cpu, "cpu_reports_native_bf16", lambda: False)  # an AVX2 laptop
    timed = _fake_probe(monkeypatch, {"f32": 1.0, "int8": 0.95})  # under MIN_SPEEDUP
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a slower int8 is a decision, not a failure
        quick = samkit.load_sam("shapes", device="cpu", fast=True)
    info = quick.image_encoder.fast_info
    assert info.precision == "f32" and info.mask_iou is None
    assert "int8 refused: not faster than f32 here" in info.detail
    assert (sorted(timed), quantizations) == (["f32", "int8"], [1])  # int8 tried there too


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_auto_falls_back_with_one_warning_when_int8_fails(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "auto")
    monkeypatch.setattr(cpu, "cpu_reports_native_bf16", lambda: False)

    def broken(*args: object) -> object:
        raise RuntimeError("calibration ran out of memory")

    monkeypatch.setattr(encoder, "quantize_int8", broken)
    with pytest.warns(FastBackendWarning, match="the int8 trial failed") as record:
        quick = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    info = quick.image_encoder.fast_info
    assert info.precision == "f32"
    assert "int8 not used: the int8 trial failed (RuntimeError: calibration ran out" in info.detail
