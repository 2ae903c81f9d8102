"""What the fast path did, and the warning it gives when it cannot be fast."""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass


class FastBackendWarning(UserWarning):
    """The fast backend is missing or failed; the plain PyTorch encoder is used instead."""


@dataclass(frozen=True)
class FastInfo:
    """What :func:`samkit.fast.accelerate` did, kept as ``sam.image_encoder.fast_info``.

    Attributes:
        backend: ``"openvino"``, ``"cuda-autocast"`` or ``"torch"`` (the fallback).
        precision: ``"f32"``, ``"int8"``, ``"bf16"`` or ``"f16"``.
        detail: A human-readable line: version, threads, cache entry, why it fell back.
        cache_hit: Whether the converted encoder came from the on-disk cache.
        seconds: How long preparing the encoder took (conversion or cache load).
        mask_iou: For a bfloat16 or int8 trial, the mean mask IoU it reached against the
            PyTorch encoder (kept when at least :data:`samkit.fast.trial.MIN_MASK_IOU`),
            else ``None``.
    """

    backend: str
    precision: str
    detail: str
    cache_hit: bool = False
    seconds: float = 0.0
    mask_iou: float | None = None


def warn(message: str) -> None:
    """Warn with :class:`FastBackendWarning`, at the first caller outside ``samkit``.

    The fast path is reached through ``load_sam(..., fast=True)``, a few calls deep: the
    warning points at the line that asked for it, however deep it was raised.

    Args:
        message: What happened and what is used instead.
    """
    level = 1
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "samkit":
        frame = frame.f_back
        level += 1
    del frame  # no reference cycle through the frame
    warnings.warn(message, FastBackendWarning, stacklevel=level)
