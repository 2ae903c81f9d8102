"""What this CPU can do (under ``SAMKIT_MAX_CPU_ISA``), and the precisions worth trying.

Learners' laptops are often AVX2-only, where a bfloat16 product is hundreds of times
slower than a float32 one: bfloat16 is tried only where the CPU reports it *and* a
probe confirms it is faster; int8 is tried on every CPU. Which one is kept is measured
(:mod:`samkit.fast.encoder`): faster than float32, and masks that hold.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import time
from pathlib import Path

import torch

from samkit.cpu_isa import CPU_ISA_CAPS
from samkit.env import fast_precision, max_cpu_isa

#: The flags :func:`cpu_summary` names, as ``(label, flags any of which counts)``.
SUMMARY_FLAGS = (
    ("AVX2", ("avx2",)),
    ("AVX-512", ("avx512f",)),
    ("VNNI", ("avx512_vnni", "avx_vnni")),
    ("bf16", ("avx512_bf16", "amx_bf16")),
    ("AMX", ("amx_tile",)),
)


def cpu_threads() -> int:
    """The threads the fast encoder computes with: torch's, at most the cores this process may use.

    ``torch.set_num_threads`` (or ``OMP_NUM_THREADS``) holds for OpenVINO too, so a
    worker given one core (``samkit segment`` on Ray, a test runner's worker) does not
    run two threads on it.
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    return max(1, min(cores, torch.get_num_threads()))


def cpuinfo() -> str:
    """The text of ``/proc/cpuinfo`` (empty off Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def capped_flags(flags: list[str], isa: str | None) -> list[str]:
    """The CPU flags at or under an instruction-set cap (the others are treated as absent).

    Args:
        flags: ``/proc/cpuinfo`` flags.
        isa: A key of ``samkit.env.CPU_ISA_CAPS``, or ``None`` (no cap).

    Returns:
        The flags kept, in their order.

    Example:
        >>> capped_flags(["avx2", "avx512f", "amx_bf16"], "avx2")
        ['avx2']
    """
    if isa is None:
        return list(flags)
    allowed = CPU_ISA_CAPS[isa].flags
    return [f for f in flags if any(fnmatch.fnmatchcase(f, p) for p in allowed)]


def cpu_flags() -> str:
    """The CPU's flags under ``SAMKIT_MAX_CPU_ISA``, one line (empty off Linux)."""
    match = re.search(r"^flags\s*:(.*)$", cpuinfo(), re.MULTILINE)
    if match is None:
        return ""
    return " ".join(capped_flags(match.group(1).split(), max_cpu_isa()))


def cpu_model() -> str:
    """The CPU's model name (``"unknown CPU"`` where it cannot be read)."""
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo(), re.MULTILINE)
    return match.group(1).strip() if match else "unknown CPU"


def cpu_summary() -> str:
    """The CPU's model and the flags that decide the fast path's speed, under the cap.

    Returns:
        For example ``"Intel Xeon ...: AVX2 yes, AVX-512 no, VNNI no, bf16 no, AMX no
        (capped to avx2)"``.
    """
    flags = set(cpu_flags().split())
    named = ", ".join(
        f"{label} {'yes' if flags & set(names) else 'no'}" for label, names in SUMMARY_FLAGS
    )
    isa = max_cpu_isa()
    capped = f" (capped to {isa} by SAMKIT_MAX_CPU_ISA)" if isa else ""
    return f"{cpu_model()}: {named}{capped}"


def effective_isa() -> str:
    """The largest instruction set of ``samkit.env.CPU_ISA_CAPS`` in use here, or ``"base"``.

    The CPU's flags under ``SAMKIT_MAX_CPU_ISA``: it keys the fast path's cached speed
    measurements, which hold only for that instruction set.
    """
    flags = set(cpu_flags().split())
    for isa, needs in (
        ("amx", {"amx_tile"}),
        ("avx512_bf16", {"avx512_bf16"}),
        ("avx512_vnni", {"avx512_vnni"}),
        ("avx512", {"avx512f"}),
        ("avx2", {"avx2"}),
    ):
        if needs <= flags:
            return isa
    return "base"


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
    if cpuinfo():
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


def precision_candidates() -> tuple[str, ...]:
    """The reduced precisions the converted CPU encoder is tried in, in order.

    From ``SAMKIT_FAST_PRECISION``:

    - ``auto`` (the default): ``"bf16"`` where :func:`cpu_reports_native_bf16`, then
      ``"int8"`` on every CPU; each is timed against float32 and kept only where it is
      faster and its masks hold (``samkit.fast.encoder``);
    - ``bf16``: ``"bf16"`` only where :func:`cpu_reports_native_bf16`;
    - ``int8``: ``"int8"`` on any CPU;
    - ``f32``: none: float32, the same embedding as stock SAM to about 1e-6.

    Returns:
        ``"bf16"`` and/or ``"int8"``; empty for float32.

    Raises:
        ValueError: If ``SAMKIT_FAST_PRECISION`` is set to something else.
    """
    wanted = fast_precision()
    native_bf16 = ("bf16",) if wanted in ("auto", "bf16") and cpu_reports_native_bf16() else ()
    if wanted == "auto":
        return (*native_bf16, "int8")
    if wanted == "bf16":
        return native_bf16
    return ("int8",) if wanted == "int8" else ()
