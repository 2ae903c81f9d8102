"""The fidelity trial's measure: mask agreement between two encoders."""

from __future__ import annotations

import pytest
import torch

import samkit
from samkit.fast import trial


@pytest.mark.slow
def test_mask_agreement_can_tell_a_wrong_encoder() -> None:
    sam = samkit.load_sam("shapes", device="cpu")
    _, check = trial.calibration_images()
    same, lowest = trial.mask_agreement(sam, sam.image_encoder, check)
    assert same == lowest == 1.0
    torch.manual_seed(0)

    def noisy(x: torch.Tensor) -> torch.Tensor:
        out = sam.image_encoder(x)
        return out + 0.5 * out.std() * torch.randn_like(out)

    wrong, worst = trial.mask_agreement(sam, noisy, check)
    assert wrong < 0.9 and worst < wrong
