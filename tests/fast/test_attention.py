"""Fused SDPA attention in the image encoder (the CUDA path), on the CPU."""

from __future__ import annotations

import pytest
import torch

import samkit
from samkit.fast import attention


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.slow
def test_sdpa_attention_is_exact() -> None:
    torch.manual_seed(0)
    encoder = samkit.model.build_shapes_sam().image_encoder
    x = torch.randn(1, 3, 384, 384)
    with torch.inference_mode():
        reference = encoder(x)
        assert attention.use_sdpa_attention(encoder) == 4
        rewritten = encoder(x)
    assert _relative_error(rewritten, reference) < 1e-5
