from __future__ import annotations

import importlib.util

import pytest

import samkit
from samkit import notes
from samkit.fast.info import FastInfo


def test_model_note_explains_the_bundled_model_only_for_it() -> None:
    assert "figuras geométricas" in notes.model_note("shapes")
    for name in ("vit_b", "vit_l", "vit_h"):
        note = notes.model_note(name)
        assert note.startswith(f"{name}: el SAM de Meta") and "figuras" not in note
    with pytest.raises(ValueError, match=r"^model_type must be one of"):
        notes.model_note("vit_x")


@pytest.fixture(scope="module")
def sam() -> object:
    return samkit.load_sam("shapes", device="cpu")


@pytest.mark.parametrize(
    ("info", "says"),
    [
        (FastInfo("openvino", "int8", "", cache_hit=True), "OpenVINO en la CPU, en int8"),
        (FastInfo("openvino", "f32", "", seconds=12.3), "convertido ahora, una sola vez, en 12 s"),
        (FastInfo("cuda-autocast", "f16", ""), "media precisión (float16)"),
    ],
)
def test_fast_note_says_which_encoder_and_how_to_turn_it_off(
    sam: object, monkeypatch: pytest.MonkeyPatch, info: FastInfo, says: str
) -> None:
    monkeypatch.setattr(sam.image_encoder, "fast_info", info, raising=False)  # type: ignore[attr-defined]
    note = notes.fast_note(sam)  # type: ignore[arg-type]
    assert says in note and note.endswith(notes.FAST_OFF_HINT)


def test_fast_note_on_the_plain_encoder(sam: object, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = sam.image_encoder  # type: ignore[attr-defined]
    monkeypatch.delattr(encoder, "fast_info", raising=False)
    assert "se cargó sin fast" in notes.fast_note(sam)  # type: ignore[arg-type]
    monkeypatch.setattr(encoder, "fast_info", FastInfo("torch", "f32", ""), raising=False)
    monkeypatch.setenv("SAMKIT_FAST", "0")
    assert "SAMKIT_FAST=0" in notes.fast_note(sam)  # type: ignore[arg-type]
    monkeypatch.delenv("SAMKIT_FAST")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name)
    )
    assert "pip install --quiet openvino nncf" in notes.fast_note(sam)  # type: ignore[arg-type]


def test_fast_note_wants_a_sam() -> None:
    with pytest.raises(ValueError, match=r"^sam must be a segment-anything Sam, but got str$"):
        notes.fast_note("sam")  # type: ignore[arg-type]
