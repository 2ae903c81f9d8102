"""The image encoder on a CUDA GPU: fused SDPA attention, float16 autocast.

segment-anything's ``Attention`` adds decomposed relative positions to the logits after
the ``q @ k^T`` product; :func:`use_sdpa_attention` hands them to one fused
``scaled_dot_product_attention`` call as its additive mask (the same sum), and
:func:`autocast_forward` runs a forward under autocast and returns float32.
"""

from __future__ import annotations

import types
from collections.abc import Callable

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, get_rel_pos


def _sdpa_attention_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """segment-anything's ``Attention.forward`` through one fused SDPA call.

    The decomposed relative positions are added to the logits by stock SAM after the
    ``q @ k^T`` product; here they become SDPA's additive mask (the same sum), so the
    result is the same up to float rounding.

    Args:
        self: The attention module.
        x: The tokens, shape ``(B, H, W, C)``.

    Returns:
        The attended tokens, shape ``(B, H, W, C)``.
    """
    b, h, w, _ = x.shape
    qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # each (B, heads, H*W, head_dim)
    mask = None
    if self.use_rel_pos:
        dim = q.shape[-1]
        rel_h_table = get_rel_pos(h, h, self.rel_pos_h)  # (H, H, head_dim)
        rel_w_table = get_rel_pos(w, w, self.rel_pos_w)  # (W, W, head_dim)
        r_q = q.reshape(b * self.num_heads, h, w, dim)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rel_h_table)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rel_w_table)
        mask = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(
            b, self.num_heads, h * w, h * w
        )
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
    out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    result: torch.Tensor = self.proj(out)
    return result


def use_sdpa_attention(encoder: torch.nn.Module) -> int:
    """Route every attention block of an image encoder through fused SDPA (in place).

    Args:
        encoder: A ``segment_anything`` ``ImageEncoderViT``.

    Returns:
        The number of attention blocks rewritten.
    """
    count = 0
    for module in encoder.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(_sdpa_attention_forward, module)
            count += 1
    return count


def autocast_forward(
    original: Callable[[torch.Tensor], torch.Tensor], device_type: str, dtype: torch.dtype
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap an encoder's ``forward`` in autocast, returning float32.

    Args:
        original: The encoder's ``forward``: images ``(B, 3, S, S)`` -> embeddings.
        device_type: Autocast's device type (``"cuda"``).
        dtype: The reduced precision (``torch.float16``).

    Returns:
        A ``forward`` with the same shapes, whose embeddings are float32.
    """

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, dtype=dtype):
            out = original(x)
        return out.float()

    return forward
