"""Loading SAM 2.1 and SAM 3: weights, device, precision, release, and the gated message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

import samkit
from samkit.hf import load
from samkit.hf.load import GatedModelError, choose_dtype, hub_access_error, load_hf
from samkit.hf.sam2 import Sam2Predictor


def _response(status: int, repo: str = "facebook/sam3") -> httpx.Response:
    url = f"https://huggingface.co/{repo}/resolve/main/config.json"
    return httpx.Response(status, request=httpx.Request("GET", url))


@pytest.mark.slow
def test_small_weights_are_random_seeded_and_said_so_in_spanish() -> None:
    first = load_hf("sam2.1_tiny", weights="small", device="cpu", keep=True)
    second = load_hf("sam2.1_tiny", weights="small", device="cpu", keep=True)
    assert first.random and first.dtype == torch.float32 and first.device.type == "cpu"
    for a, b in zip(
        first.model.state_dict().values(), second.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b)
    assert first.describe() == (
        "sam2.1_tiny: pesos ALEATORIOS, configuración chica (sin descarga): las máscaras no "
        "significan nada (cpu, float32)"
    )
    load.release_all()


def test_weights_come_from_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_HF_WEIGHTS", "small")
    assert load_hf("sam3", device="cpu").weights == "small"
    monkeypatch.setenv("SAMKIT_HF_WEIGHTS", "tiny")
    with pytest.raises(ValueError, match=re.escape("'random', 'small', but got 'tiny'")):
        load_hf("sam3", device="cpu")


@pytest.mark.slow
def test_loading_another_model_releases_the_previous_one() -> None:
    sam2 = load_hf("sam2.1_tiny", weights="small", device="cpu")
    predictor = Sam2Predictor(sam2)
    kept = load_hf("sam2.1_small", weights="small", device="cpu")
    sam3 = load_hf("sam3", weights="small", device="cpu", keep=True)
    assert sam2.released and not kept.released and not sam3.released
    assert next(sam2.model.parameters()).device.type == "meta"  # its memory is gone
    assert load.LOADED == [kept, sam3]
    message = "the sam2.1_tiny model was released when another model was loaded"
    with pytest.raises(RuntimeError, match=message):
        predictor.set_image(np.zeros((8, 8, 3), np.uint8))
    load.release_all()
    assert kept.released and sam3.released and load.LOADED == []


@pytest.mark.slow
def test_a_saved_folder_loads_with_its_config(tmp_path: Path) -> None:
    built = load_hf("sam2.1_base_plus", weights="small", device="cpu")
    built.model.save_pretrained(tmp_path)
    built.processor.save_pretrained(tmp_path)
    again = load_hf("sam2.1_base_plus", weights=str(tmp_path), device="cpu")
    assert not again.random and again.describe().startswith(
        f"sam2.1_base_plus: pesos de {tmp_path}"
    )
    for a, b in zip(
        built.model.state_dict().values(), again.model.state_dict().values(), strict=True
    ):
        if a.device.type != "meta":
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"weights": "/no/such/folder"},
            "a folder saved with save_pretrained, but got '/no/such/folder'",
        ),
        ({"weights": ""}, "weights must be 'hub', 'random', 'small' or a folder, but got ''"),
        ({"weights": "small", "dtype": torch.int8}, "dtype must be a floating torch.dtype"),
        ({"weights": "small", "device": "cpu", "dtype": "fp16"}, "but got 'fp16'"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_hf("sam2.1_tiny", **kwargs)


def test_precision_is_float32_on_a_cpu_and_half_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_dtype("cpu") == torch.float32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_dtype("cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert choose_dtype("cuda:0") == torch.float16  # a T4


def _refuse(error: Exception) -> Any:
    def download(*args: Any, **kwargs: Any) -> Any:
        raise error

    return download


@pytest.mark.parametrize(
    "error",
    [
        GatedRepoError("Access to model facebook/sam3 is restricted.", response=_response(403)),
        GatedRepoError("Cannot access gated repo.", response=_response(401)),
        HfHubHTTPError("401 Client Error: Unauthorized", response=_response(401)),
    ],
)
def test_gated_checkpoint_gives_the_spanish_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception
) -> None:
    # the Hub as transformers reaches it, answering as it does for a gated repository
    import transformers.utils.hub as transformers_hub

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(transformers_hub, "hf_hub_download", _refuse(error))
    monkeypatch.setattr(transformers_hub, "snapshot_download", _refuse(error))
    with pytest.raises(GatedModelError) as raised:
        load_hf("sam3", weights="hub", device="cpu")
    text = str(raised.value)
    assert text.startswith("No tenés acceso a facebook/sam3: es un modelo de acceso restringido")
    assert "https://huggingface.co/facebook/sam3" in text
    assert "`huggingface-cli login`" in text
    assert "`from huggingface_hub import login`" in text
    assert raised.value.__suppress_context__  # no chained transformers traceback


def test_other_hub_errors_are_not_called_gated() -> None:
    not_found = HfHubHTTPError("404 Client Error", response=_response(404))
    assert hub_access_error(OSError("disk full"), "facebook/sam3") is None
    assert hub_access_error(not_found, "facebook/sam3") is None
    wrapped = OSError("You are trying to access a gated repo.")
    wrapped.__cause__ = GatedRepoError("gated", response=_response(403))
    assert isinstance(hub_access_error(wrapped, "facebook/sam3"), GatedModelError)


@pytest.mark.parametrize("model_type", ["sam2.1_tiny", "sam3"])
def test_load_sam_points_to_samkit_hf(model_type: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"load it with samkit.hf.load_hf({model_type!r})")
    ):
        samkit.load_sam(model_type)
    with pytest.raises(ValueError, match="is a Hugging Face transformers model"):
        samkit.download_checkpoint(model_type)


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ("5.25.0", "transformers 5.25.0: alcanza para SAM 2.1 y SAM 3"),
        (
            "4.57.1",
            "transformers 4.57.1 es anterior a la 5: ejecutá %pip install --upgrade "
            '"transformers>=5"',
        ),
        (None, "transformers no está instalado: ejecutá %pip install --upgrade"),
    ],
)
def test_transformers_status_says_when_to_upgrade(
    monkeypatch: pytest.MonkeyPatch, installed: str | None, expected: str
) -> None:
    import importlib.metadata

    def version(name: str) -> str:
        assert name == "transformers"
        if installed is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert load.transformers_status().startswith(expected)
