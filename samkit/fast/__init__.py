"""The fast path: SAM's image encoder on the fastest backend this machine has.

``accelerate(sam, checkpoint)`` (what ``samkit.load_sam(..., fast=True)`` calls) swaps
``sam.image_encoder`` for one that computes the same embedding faster, so the stock
``SamPredictor`` and ``SamAutomaticMaskGenerator`` work unchanged:

- on a CPU, the encoder is converted once to OpenVINO, and the converted model is
  cached on disk next to the weights, keyed by the image encoder weights' sha256 (a
  fine-tuned checkpoint shares its base's conversion), OpenVINO's version, the
  instruction set, the input size and the precision. Where the CPU computes bfloat16
  natively (AMX or AVX512-BF16, confirmed by a probe), it is tried compiled for
  bfloat16; on every CPU, it is tried quantized to int8 with NNCF, calibrated on the
  bundled images. Each is a trial, timed against float32 here and kept only if it is
  faster and its masks match the PyTorch encoder's (mean IoU at least
  :data:`MIN_MASK_IOU` on images and prompts it was not calibrated on); the fastest kept
  one is used, otherwise float32, the same embedding to about 1e-6 (see
  :func:`precision_candidates` and ``samkit.fast.encoder``);
- on a CUDA GPU, the encoder runs under float16 autocast with its attention rewritten
  as one fused ``scaled_dot_product_attention`` (relative positions as its mask)
  (nothing is converted, nothing is cached);
- anywhere else, or when the backend is missing or fails, one
  :class:`FastBackendWarning` says why and the plain PyTorch encoder is kept.

Its modules:

- ``samkit.fast.info``: :class:`FastInfo` (what was done) and :class:`FastBackendWarning`;
- ``samkit.fast.attention``: fused SDPA attention and float16 autocast, for CUDA;
- ``samkit.fast.cpu``: the CPU's features (under ``SAMKIT_MAX_CPU_ISA``), threads, the
  bfloat16 probe, the precisions worth trying;
- ``samkit.fast.cache``: the on-disk cache of converted encoders;
- ``samkit.fast.trial``: the fidelity trial (calibration images, mask agreement);
- ``samkit.fast.openvino``: conversion, int8 quantization, the OpenVINO encoder module;
- ``samkit.fast.encoder``: the CPU encoder from the cache, or converted, tried, cached;
- ``samkit.fast.amg``: :class:`FastMaskGenerator`, the automatic mask generator, faster;
- ``samkit.fast.onnx``: the prompt decoder exported to ONNX;
- ``samkit.fast.estimate``: how long automatic masks will take here, in Spanish.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from segment_anything.modeling import Sam

from samkit.fast.amg import FastMaskGenerator
from samkit.fast.attention import autocast_forward, use_sdpa_attention
from samkit.fast.cache import (
    CACHE_DIRNAME,
    CACHE_FORMAT,
    cache_dir_for,
    cache_key,
    encoder_sha256,
    share_entries,
)
from samkit.fast.cpu import (
    cpu_reports_native_bf16,
    cpu_reports_native_int8,
    cpu_summary,
    cpu_threads,
    effective_isa,
    precision_candidates,
)
from samkit.fast.encoder import openvino_encoder
from samkit.fast.estimate import estimate_line
from samkit.fast.info import FastBackendWarning, FastInfo, warn
from samkit.fast.onnx import export_decoder
from samkit.fast.openvino import OpenVINOImageEncoder
from samkit.fast.trial import MIN_MASK_IOU, calibration_images, mask_agreement

__all__ = [
    "CACHE_DIRNAME",
    "CACHE_FORMAT",
    "MIN_MASK_IOU",
    "FastBackendWarning",
    "FastInfo",
    "FastMaskGenerator",
    "OpenVINOImageEncoder",
    "accelerate",
    "cache_dir_for",
    "cache_key",
    "calibration_images",
    "cpu_reports_native_bf16",
    "cpu_reports_native_int8",
    "cpu_summary",
    "cpu_threads",
    "effective_isa",
    "encoder_sha256",
    "estimate_line",
    "export_decoder",
    "mask_agreement",
    "precision_candidates",
    "share_entries",
    "use_sdpa_attention",
]


def _fallback(sam: Sam, why: str) -> Sam:
    """Warn once with the reason and keep the plain PyTorch encoder."""
    warn(f"fast=True: {why}; using the plain PyTorch image encoder instead")
    sam.image_encoder.fast_info = FastInfo("torch", "f32", why)
    return sam


def _use_cuda(sam: Sam) -> Sam:
    """Fused SDPA attention and float16 autocast on the encoder (in place)."""
    encoder = sam.image_encoder
    use_sdpa_attention(encoder)
    encoder.forward = autocast_forward(encoder.forward, "cuda", torch.float16)
    encoder.fast_info = FastInfo(
        "cuda-autocast", "f16", "float16 autocast and fused SDPA attention on CUDA"
    )
    return sam


def accelerate(sam: Sam, checkpoint: str | os.PathLike[str]) -> Sam:
    """Put a loaded SAM's image encoder on the fastest backend of its device (in place).

    Args:
        sam: A ``Sam`` in eval mode, on its final device.
        checkpoint: The weights file it was loaded from (the cache is beside it).

    Returns:
        The same ``Sam``; ``sam.image_encoder.fast_info`` says what was done.
    """
    device = sam.device
    if device.type == "cuda":
        return _use_cuda(sam)
    if device.type != "cpu":
        return _fallback(sam, f"there is no fast backend for device {device.type!r}")
    try:
        import openvino as ov
    except ImportError as exc:
        return _fallback(
            sam, f"OpenVINO is not installed ({exc}; pip install openvino nncf adds it)"
        )
    try:
        sam.image_encoder = openvino_encoder(sam, Path(checkpoint), ov)
    except Exception as exc:
        reason = " ".join(str(exc).split())
        return _fallback(sam, f"the OpenVINO backend failed ({type(exc).__name__}: {reason})")
    return sam
