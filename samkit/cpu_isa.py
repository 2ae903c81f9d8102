"""The instruction-set caps of ``SAMKIT_MAX_CPU_ISA``: what each sets, which flags it leaves.

Plain data, without torch, so that ``samkit.env`` can pass the cap on before torch loads.
"""

from __future__ import annotations

from typing import NamedTuple


class IsaCap(NamedTuple):
    """What one ``SAMKIT_MAX_CPU_ISA`` value sets, and the CPU flags it leaves.

    Attributes:
        onednn: oneDNN's ``ONEDNN_MAX_CPU_ISA`` (torch's and OpenVINO's kernels).
        aten: torch's ``ATEN_CPU_CAPABILITY``.
        mkl: MKL's ``MKL_ENABLE_INSTRUCTIONS``.
        flags: The ``/proc/cpuinfo`` flags at or under the cap (a prefix ending in ``*``
            stands for every flag that starts with it); any other is treated as absent.
    """

    onednn: str
    aten: str
    mkl: str
    flags: tuple[str, ...]


_UNDER_AVX512 = ("sse*", "ssse3", "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "popcnt")
_AVX512 = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")

#: The values of ``SAMKIT_MAX_CPU_ISA``, from the smallest instruction set up.
CPU_ISA_CAPS: dict[str, IsaCap] = {
    "avx2": IsaCap("AVX2", "avx2", "AVX2", _UNDER_AVX512),
    "avx512": IsaCap("AVX512_CORE", "avx512", "AVX512", _UNDER_AVX512 + _AVX512),
    "avx512_vnni": IsaCap(
        "AVX512_CORE_VNNI", "avx512", "AVX512_E1", _UNDER_AVX512 + _AVX512 + ("avx512_vnni",)
    ),
    "avx512_bf16": IsaCap(
        "AVX512_CORE_BF16",
        "avx512",
        "AVX512_E1",
        _UNDER_AVX512 + _AVX512 + ("avx512_vnni", "avx512_bf16"),
    ),
    "amx": IsaCap("AVX512_CORE_AMX", "avx512", "AVX512_E4", ("*",)),
}


def isa_cap_variables(isa: str) -> dict[str, str]:
    """The environment variables that cap torch and OpenVINO to an instruction set.

    Args:
        isa: A key of :data:`CPU_ISA_CAPS`.

    Returns:
        oneDNN's (both names; OpenVINO's CPU plugin reads them too), OpenVINO's own,
        ATen's and MKL's variable, with their values.

    Example:
        >>> from samkit.cpu_isa import isa_cap_variables
        >>> isa_cap_variables("avx2")["ONEDNN_MAX_CPU_ISA"]
        'AVX2'
    """
    cap = CPU_ISA_CAPS[isa]
    return {
        "ONEDNN_MAX_CPU_ISA": cap.onednn,
        "DNNL_MAX_CPU_ISA": cap.onednn,
        "OV_CPU_MAX_ISA": cap.onednn,
        "ATEN_CPU_CAPABILITY": cap.aten,
        "MKL_ENABLE_INSTRUCTIONS": cap.mkl,
    }
