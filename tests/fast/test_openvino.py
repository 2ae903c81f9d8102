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
