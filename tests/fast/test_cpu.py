"""The CPU's features and the precision chosen from them.

That ``SAMKIT_MAX_CPU_ISA=avx2`` reaches torch (and OpenVINO) in a new process is checked
once, in tests/test_env.py, where the cap is read."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import torch

from samkit.fast import cpu
from samkit.fast.openvino import compile_config


@pytest.mark.parametrize(
    ("wanted", "bf16", "expected"),
    [
        ("", True, ("bf16", "int8")),  # auto: bf16 where the CPU computes it natively
        ("", False, ("int8",)),  # int8 is tried on every CPU, AVX2-only ones too
        (" Auto ", True, ("bf16", "int8")),
        ("f32", True, ()),
        ("int8", False, ("int8",)),
        ("bf16", False, ()),
        ("BF16", True, ("bf16",)),
    ],
)
def test_precisions_tried_depend_on_the_cpu_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, wanted: str, bf16: bool, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", wanted)
    monkeypatch.setattr(cpu, "cpu_reports_native_bf16", lambda: bf16)
    assert cpu.precision_candidates() == expected


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("flags\t: fpu avx2 avx512f avx512_vnni amx_tile\n", True),
        ("flags\t: fpu avx2 avx_vnni\n", True),
        ("flags\t: fpu avx2 fma avx512f\n", False),
        ("", False),  # off Linux: no flags, no int8
    ],
)
def test_native_int8_is_read_from_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch, cpuinfo: str, expected: bool
) -> None:
    monkeypatch.setattr(cpu, "cpuinfo", lambda: cpuinfo)
    assert cpu.cpu_reports_native_int8() is expected


XEON = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480C\n"
    "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 "
    "amx_bf16 amx_tile amx_int8 avx_vnni\n"
)


@pytest.mark.parametrize(
    ("cap", "isa", "summary"),
    [
        (None, "amx", "AVX2 yes, AVX-512 yes, VNNI yes, bf16 yes, AMX yes"),
        ("amx", "amx", "AVX2 yes, AVX-512 yes, VNNI yes, bf16 yes, AMX yes"),
        ("avx512_bf16", "avx512_bf16", "AVX2 yes, AVX-512 yes, VNNI yes, bf16 yes, AMX no"),
        ("avx512_vnni", "avx512_vnni", "AVX2 yes, AVX-512 yes, VNNI yes, bf16 no, AMX no"),
        ("avx512", "avx512", "AVX2 yes, AVX-512 yes, VNNI no, bf16 no, AMX no"),
        ("AVX2", "avx2", "AVX2 yes, AVX-512 no, VNNI no, bf16 no, AMX no"),
    ],
)
def test_flags_above_the_isa_cap_are_treated_as_absent(
    monkeypatch: pytest.MonkeyPatch, cap: str | None, isa: str, summary: str
) -> None:
    monkeypatch.setattr(cpu, "cpuinfo", lambda: XEON)
    if cap is None:
        monkeypatch.delenv("SAMKIT_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("SAMKIT_MAX_CPU_ISA", cap)
    assert cpu.effective_isa() == isa
    capped = f" (capped to {cap.lower()} by SAMKIT_MAX_CPU_ISA)" if cap else ""
    assert cpu.cpu_summary() == f"Intel(R) Xeon(R) Platinum 8480C: {summary}{capped}"
    assert cpu.cpu_reports_native_int8() is (isa not in ("avx2", "avx512"))


def test_native_bf16_needs_the_flag_under_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "cpuinfo", lambda: XEON)
    monkeypatch.setattr(cpu, "bf16_probe_speedup", lambda: 5.0)  # as if it were native
    monkeypatch.setenv("SAMKIT_MAX_CPU_ISA", "avx2")
    assert cpu.cpu_reports_native_bf16.__wrapped__() is False
    monkeypatch.setenv("SAMKIT_MAX_CPU_ISA", "avx512_bf16")
    assert cpu.cpu_reports_native_bf16.__wrapped__() is True


def test_no_flags_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "cpuinfo", lambda: "")
    assert (cpu.cpu_flags(), cpu.cpu_model(), cpu.effective_isa()) == ("", "unknown CPU", "base")


def test_bad_precision_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "int4")
    with pytest.raises(
        ValueError,
        match="SAMKIT_FAST_PRECISION must be one of 'auto', 'f32', 'int8', 'bf16', but got 'int4'",
    ):
        cpu.precision_candidates()


@pytest.fixture
def fresh_bf16_answer() -> Iterator[None]:
    """``cpu_reports_native_bf16`` answers once per process: forget it before and after."""
    cpu.cpu_reports_native_bf16.cache_clear()
    yield
    cpu.cpu_reports_native_bf16.cache_clear()


@pytest.mark.parametrize(("speedup", "expected"), [(0.02, ()), (1.5, ()), (4.0, ("bf16",))])
@pytest.mark.usefixtures("fresh_bf16_answer")
def test_a_forced_bf16_is_refused_where_the_probe_finds_it_slow(
    monkeypatch: pytest.MonkeyPatch, speedup: float, expected: tuple[str, ...]
) -> None:
    monkeypatch.setattr(cpu, "cpuinfo", lambda: XEON)  # the flags say bf16 ...
    monkeypatch.delenv("SAMKIT_MAX_CPU_ISA", raising=False)
    probes: list[int] = []

    def probe() -> float:
        probes.append(1)
        return speedup  # ... and the product says how fast it really is

    monkeypatch.setattr(cpu, "bf16_probe_speedup", probe)
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "bf16")
    assert cpu.precision_candidates() == expected
    assert len(probes) == (1 if expected else 3)  # a slow answer is asked again, twice
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "auto")
    assert cpu.precision_candidates() == (*expected, "int8")
    assert len(probes) == (1 if expected else 3)  # answered once per process


def test_the_fast_encoder_uses_torchs_threads_at_most_the_cores() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert cpu.cpu_threads() == 1
        assert compile_config("f32")["INFERENCE_NUM_THREADS"] == 1
        torch.set_num_threads(512)  # more than any machine here has
        assert cpu.cpu_threads() == len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(before)
