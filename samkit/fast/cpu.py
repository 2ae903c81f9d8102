"""What this CPU can do, measured where it matters, and the precision chosen from it.

Learners' laptops are often AVX2-only, where a bfloat16 product is hundreds of times
slower than a float32 one: bfloat16 is chosen only where the CPU reports it *and* a
probe confirms it is faster; int8 where the CPU reports native int8 dot products.
"""

from __future__ import annotations

import functools
import os
import re
import time
from pathlib import Path

import torch

from samkit.env import fast_precision


def cpu_threads() -> int:
    """The number of CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cpu_flags() -> str:
    """The text of ``/proc/cpuinfo`` (empty off Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_reports_native_int8() -> bool:
    """Whether the CPU reports native int8 dot products (AVX512-VNNI, AVX-VNNI or AMX-INT8).

    There an int8 encoder runs about twice as fast as a float32 one. Off Linux, where
    the flags cannot be read, ``False``.
    """
    return bool(re.search(r"\b(avx512_vnni|avx_vnni|amx_int8)\b", cpu_flags()))


@functools.cache
def cpu_reports_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 matrix products natively (AVX512-BF16 or AMX).

    It takes both: the CPU's own flags (or oneDNN's check, off Linux), and a probe in
    which a bfloat16 product is at least twice as fast as a float32 one (a CPU that
    only emulates bfloat16 is many times slower).

    Answered once per process, so that every load in it picks the same cache entry.

    Returns:
        ``True`` only when both agree.
    """
    flags = cpu_flags()
    if flags:
        if not re.search(r"\b(avx512_bf16|amx_bf16)\b", flags):
            return False
    else:
        try:
            if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
                return False
        except (AttributeError, RuntimeError):
            return False
    # A CPU that emulates bfloat16 is many times slower, never near 2x faster: a busy
    # moment (another thread pool still spinning) can only make a native one look slower,
    # so one good round of three is enough.
    return any(bf16_probe_speedup() >= 2.0 for _ in range(3))


def bf16_probe_speedup() -> float:
    """float32 time / bfloat16 time of a 768x768 product (best of five, ~50 ms in all).

    Large enough that the timer's noise does not decide: a CPU with native bfloat16 gives
    3-7 here, one that emulates it far under 1.
    """
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.ones(768, 768, dtype=dtype)
        a @ a
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - start)
        times[dtype] = best
    return times[torch.float32] / max(times[torch.bfloat16], 1e-9)


def choose_precision() -> str:
    """The precision the converted CPU encoder is tried in, from ``SAMKIT_FAST_PRECISION``.

    - ``auto`` (the default): ``"bf16"`` where :func:`cpu_reports_native_bf16`, else
      ``"int8"`` where :func:`cpu_reports_native_int8`, else ``"f32"``;
    - ``bf16``: ``"bf16"`` only where :func:`cpu_reports_native_bf16`, else ``"f32"``;
    - ``int8``: ``"int8"`` on any CPU;
    - ``f32``: ``"f32"``, the same embedding as stock SAM to about 1e-6.

    bfloat16 moves the embedding by about 1e-2, int8 by about 2e-2: either is kept only
    if its masks hold (see :mod:`samkit.fast.trial`).

    Returns:
        ``"f32"``, ``"int8"`` or ``"bf16"``.

    Raises:
        ValueError: If ``SAMKIT_FAST_PRECISION`` is set to something else.
    """
    wanted = fast_precision()
    if wanted == "auto":
        if cpu_reports_native_bf16():
            return "bf16"
        return "int8" if cpu_reports_native_int8() else "f32"
    if wanted == "bf16":
        return "bf16" if cpu_reports_native_bf16() else "f32"
    return wanted
