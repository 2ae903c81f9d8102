"""The fast path on the bundled ``shapes`` model: same embedding, cache, fallbacks."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import ImageEncoderViT

import samkit
from samkit import fast


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights directory (SAMKIT_HOME), so each test starts without a cache.

    The precision is pinned to float32, the same on every CPU; the int8 tests set it.
    """
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "f32")
    return tmp_path / "home"


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count the calls of ``samkit.fast.<name>`` (one entry per call); it still runs."""
    calls: list[int] = []
    original = getattr(fast, name)

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fast, name, counting)
    return calls


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the encoder conversions."""
    return _count_calls(monkeypatch, "_convert_openvino")


def _embed(sam: torch.nn.Module, image: np.ndarray) -> torch.Tensor:
    predictor = SamPredictor(sam)  # type: ignore[arg-type]
    predictor.set_image(image)
    return predictor.features


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def test_fast_shapes_gives_the_same_embedding_and_masks(home: Path) -> None:
    scene = samkit.shapes.make_scene(3, 240, 320)
    plain = samkit.load_sam("shapes", device="cpu")
    quick = samkit.load_sam("shapes", device="cpu", fast=True)
    assert isinstance(quick.image_encoder, fast.OpenVINOImageEncoder)
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


def _predict(sam: torch.nn.Module, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, ...]:
    predictor = SamPredictor(sam)  # type: ignore[arg-type]
    predictor.set_image(image)
    return predictor.predict(box=box, multimask_output=False)


def test_second_load_hits_the_cache(home: Path, conversions: list[int]) -> None:
    first = samkit.load_sam("shapes", device="cpu", fast=True)
    assert conversions == [1]
    assert not first.image_encoder.fast_info.cache_hit
    second = samkit.load_sam("shapes", device="cpu", fast=True)
    assert conversions == [1], "the second load converted the encoder again"
    assert second.image_encoder.fast_info.cache_hit
    entries = list((home / fast.CACHE_DIRNAME).iterdir())
    assert len(entries) == 1, entries  # no temporary ".part" folder left behind
    assert entries[0].name.startswith("encoder-")
    assert {p.name for p in entries[0].iterdir()} == {"encoder.xml", "encoder.bin", "manifest.json"}


@pytest.mark.parametrize("damage", ["truncate_bin", "garbage_xml", "drop_manifest"])
def test_corrupted_cache_entry_is_converted_again_with_a_warning(
    home: Path, conversions: list[int], damage: str
) -> None:
    samkit.load_sam("shapes", device="cpu", fast=True)
    (entry,) = (home / fast.CACHE_DIRNAME).iterdir()
    if damage == "truncate_bin":
        data = (entry / "encoder.bin").read_bytes()
        (entry / "encoder.bin").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_xml":
        (entry / "encoder.xml").write_text("<net>not a model", encoding="utf-8")
    else:
        (entry / "manifest.json").unlink()
    with pytest.warns(fast.FastBackendWarning, match="corrupted") as record:
        sam = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    assert conversions == [1, 1]
    assert isinstance(sam.image_encoder, fast.OpenVINOImageEncoder)
    assert not sam.image_encoder.fast_info.cache_hit
    # The entry was rewritten whole: the next load is a clean hit.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = samkit.load_sam("shapes", device="cpu", fast=True)
    assert again.image_encoder.fast_info.cache_hit


def test_missing_openvino_warns_once_and_keeps_torch(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # "import openvino" now fails
    with pytest.warns(fast.FastBackendWarning, match="OpenVINO is not installed") as record:
        sam = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    assert "samkit[fast]" in str(record[0].message)
    assert type(sam.image_encoder) is ImageEncoderViT
    assert sam.image_encoder.fast_info.backend == "torch"
    assert not (home / fast.CACHE_DIRNAME).exists()


def test_failing_backend_warns_once_with_the_reason(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("conversion exploded")

    monkeypatch.setattr(fast, "_convert_openvino", broken)
    with pytest.warns(fast.FastBackendWarning, match="conversion exploded") as record:
        sam = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    assert type(sam.image_encoder) is ImageEncoderViT


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_fast_must_be_a_bool(value: object) -> None:
    with pytest.raises(ValueError, match="fast must be True or False"):
        samkit.load_sam("shapes", device="cpu", fast=value)  # type: ignore[arg-type]


def test_sdpa_attention_is_exact() -> None:
    torch.manual_seed(0)
    encoder = samkit.model.build_shapes_sam().image_encoder
    x = torch.randn(1, 3, 384, 384)
    with torch.inference_mode():
        reference = encoder(x)
        assert fast.use_sdpa_attention(encoder) == 4
        rewritten = encoder(x)
    assert _relative_error(rewritten, reference) < 1e-5


def test_encoder_checks_its_input(home: Path) -> None:
    sam = samkit.load_sam("shapes", device="cpu", fast=True)
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 3, 384, 384\)"):
        sam.image_encoder(torch.zeros(1, 3, 100, 100))
    empty = sam.image_encoder(torch.zeros(0, 3, 384, 384))
    assert tuple(empty.shape) == (0, 128, 24, 24)
    batch = torch.randn(2, 3, 384, 384)
    out = sam.image_encoder(batch)
    assert tuple(out.shape) == (2, 128, 24, 24)
    torch.testing.assert_close(out[1:], sam.image_encoder(batch[1:]))


def test_cache_dir_is_next_to_a_user_checkpoint(home: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine" / "weights.pt"
    mine.parent.mkdir()
    mine.write_bytes(b"x")
    assert fast.cache_dir_for(mine) == mine.parent.resolve() / fast.CACHE_DIRNAME
    bundled = samkit.download_checkpoint("shapes")
    assert fast.cache_dir_for(bundled) == home / fast.CACHE_DIRNAME


@pytest.mark.parametrize(
    ("version", "size", "precision", "expected"),
    [
        (
            "2026.4.1-22982-e213a/4",
            1024,
            "f32",
            "encoder-abcdef-openvino2026.4.1_22982_e213a_4-1024px-f32-v2",
        ),
        ("", 384, "bf16", "encoder-abcdef-openvino-384px-bf16-v2"),
        ("2026.4", 1024, "int8", "encoder-abcdef-openvino2026.4-1024px-int8-v2"),
    ],
)
def test_cache_key(version: str, size: int, precision: str, expected: str) -> None:
    assert fast.cache_key("abcdef", version, size, precision) == expected


@pytest.mark.parametrize(
    ("wanted", "bf16", "int8", "expected"),
    [
        ("", True, True, "bf16"),  # auto: bf16 where the CPU computes it natively
        ("", False, True, "int8"),  # then int8 where it has VNNI
        ("auto", False, False, "f32"),
        (" Auto ", True, False, "bf16"),
        ("f32", True, True, "f32"),
        ("int8", False, False, "int8"),  # asked for: tried on any CPU
        ("bf16", False, True, "f32"),
        ("BF16", True, False, "bf16"),
    ],
)
def test_precision_is_chosen_never_assumed(
    monkeypatch: pytest.MonkeyPatch, wanted: str, bf16: bool, int8: bool, expected: str
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", wanted)
    monkeypatch.setattr(fast, "cpu_reports_native_bf16", lambda: bf16)
    monkeypatch.setattr(fast, "cpu_reports_native_int8", lambda: int8)
    assert fast.choose_precision() == expected


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("flags\t: fpu avx2 avx512f avx512_vnni amx_tile\n", True),
        ("flags\t: fpu avx2 avx_vnni\n", True),
        ("flags\t: fpu avx2 fma avx512f\n", False),
        ("", False),  # off Linux: no flags, no int8
    ],
)
def test_native_int8_is_read_from_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch, cpuinfo: str, expected: bool
) -> None:
    monkeypatch.setattr(fast, "_cpu_flags", lambda: cpuinfo)
    assert fast.cpu_reports_native_int8() is expected


def test_bad_precision_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "int4")
    with pytest.raises(
        ValueError,
        match="SAMKIT_FAST_PRECISION must be one of 'auto', 'f32', 'int8', 'bf16', but got 'int4'",
    ):
        fast.choose_precision()


# ------------------------------------------------------------------ int8


@pytest.fixture
def quantizations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the int8 quantizations."""
    return _count_calls(monkeypatch, "_quantize_int8")


def _manifest(home: Path, precision: str) -> dict[str, object]:
    (entry,) = (home / fast.CACHE_DIRNAME).glob(f"encoder-*-{precision}-v*")
    manifest: dict[str, object] = json.loads((entry / "manifest.json").read_text())
    return manifest


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_reduced_precision_is_kept_when_its_masks_hold(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    conversions: list[int],
    quantizations: list[int],
    precision: str,
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", precision)
    monkeypatch.setattr(fast, "cpu_reports_native_bf16", lambda: True)
    monkeypatch.setattr(fast, "MIN_MASK_IOU", 0.5)  # the shapes model's int8 is ~0.96
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


def test_int8_is_refused_when_its_masks_do_not_hold(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    conversions: list[int],
    quantizations: list[int],
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "int8")
    monkeypatch.setattr(fast, "MIN_MASK_IOU", 1.01)  # no int8 can reach it
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
    (int8_entry,) = (home / fast.CACHE_DIRNAME).glob("*-int8-*")
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


def test_missing_nncf_warns_once_and_keeps_float32(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "int8")
    monkeypatch.setitem(sys.modules, "nncf", None)  # "import nncf" now fails
    with pytest.warns(fast.FastBackendWarning, match="NNCF is not installed") as record:
        sam = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    assert "samkit[fast]" in str(record[0].message)
    info = sam.image_encoder.fast_info
    assert (info.backend, info.precision) == ("openvino", "f32")
    assert "int8 not used" in info.detail


def test_mask_agreement_can_tell_a_wrong_encoder() -> None:
    sam = samkit.load_sam("shapes", device="cpu")
    _, check = fast.calibration_images()
    same, lowest = fast.mask_agreement(sam, sam.image_encoder, check)
    assert same == lowest == 1.0
    torch.manual_seed(0)

    def noisy(x: torch.Tensor) -> torch.Tensor:
        out = sam.image_encoder(x)
        return out + 0.5 * out.std() * torch.randn_like(out)

    wrong, worst = fast.mask_agreement(sam, noisy, check)
    assert wrong < 0.9 and worst < wrong


@pytest.mark.slow
def test_fast_vit_b_embedding_matches_stock(home: Path, random_vit_b_checkpoint: Path) -> None:
    checkpoint = random_vit_b_checkpoint
    plain = samkit.load_sam("vit_b", checkpoint=checkpoint, device="cpu")
    quick = samkit.load_sam("vit_b", checkpoint=checkpoint, device="cpu", fast=True)
    assert (checkpoint.parent / fast.CACHE_DIRNAME).is_dir()
    x = torch.randn(1, 3, 1024, 1024)
    with torch.inference_mode():
        assert _relative_error(quick.image_encoder(x), plain.image_encoder(x)) < 1e-4
