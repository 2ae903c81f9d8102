"""The CPU's features and the precision chosen from them."""

from __future__ import annotations

import pytest

from samkit.fast import cpu


@pytest.mark.parametrize(
    ("wanted", "bf16", "int8", "expected"),
    [
        ("", True, True, "bf16"),  # auto: bf16 where the CPU computes it natively
        ("", False, True, "int8"),  # then int8 where it has VNNI
        ("auto", False, False, "f32"),
        (" Auto ", True, False, "bf16"),
        ("f32", True, True, "f32"),
        ("int8", False, False, "int8"),  # asked for: tried on any CPU
        ("bf16", False, True, "f32"),
        ("BF16", True, False, "bf16"),
    ],
)
def test_precision_is_chosen_never_assumed(
    monkeypatch: pytest.MonkeyPatch, wanted: str, bf16: bool, int8: bool, expected: str
) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", wanted)
    monkeypatch.setattr(cpu, "cpu_reports_native_bf16", lambda: bf16)
    monkeypatch.setattr(cpu, "cpu_reports_native_int8", lambda: int8)
    assert cpu.choose_precision() == expected


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
    monkeypatch.setattr(cpu, "cpu_flags", lambda: cpuinfo)
    assert cpu.cpu_reports_native_int8() is expected


def test_bad_precision_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "int4")
    with pytest.raises(
        ValueError,
        match="SAMKIT_FAST_PRECISION must be one of 'auto', 'f32', 'int8', 'bf16', but got 'int4'",
    ):
        cpu.choose_precision()
