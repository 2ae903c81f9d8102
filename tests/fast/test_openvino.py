"""The OpenVINO encoder module: its input checks, batches and empty batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import samkit


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
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


@pytest.mark.slow  # converts an encoder with OpenVINO
def test_conversion_runs_the_encoder_once_and_keeps_its_embedding() -> None:
    import openvino as ov

    from samkit.fast.openvino import compile_config, convert_openvino

    sam = samkit.load_sam("shapes", device="cpu")
    runs: list[int] = []
    hook = sam.image_encoder.register_forward_hook(lambda *args: runs.append(1))
    converted = convert_openvino(sam.image_encoder, 384, ov)
    hook.remove()
    assert runs == [1], "the conversion ran the encoder again to check its trace"
    x = torch.randn(1, 3, 384, 384)
    compiled = ov.Core().compile_model(converted, "CPU", compile_config("f32"))
    with torch.no_grad():
        expected = sam.image_encoder(x)
    torch.testing.assert_close(
        torch.from_numpy(compiled(x.numpy())[0]), expected, rtol=1e-4, atol=1e-4
    )
