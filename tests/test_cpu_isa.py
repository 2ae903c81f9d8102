"""The instruction-set caps: each one's variables, and the flags it leaves."""

from __future__ import annotations

import itertools

from samkit.cpu_isa import CPU_ISA_CAPS, isa_cap_variables


def test_every_cap_sets_the_same_variables_and_onednn_twice() -> None:
    for isa in CPU_ISA_CAPS:
        found = isa_cap_variables(isa)
        assert set(found) == {
            "ONEDNN_MAX_CPU_ISA",
            "DNNL_MAX_CPU_ISA",
            "OV_CPU_MAX_ISA",
            "ATEN_CPU_CAPABILITY",
            "MKL_ENABLE_INSTRUCTIONS",
        }
        assert found["ONEDNN_MAX_CPU_ISA"] == found["DNNL_MAX_CPU_ISA"] == found["OV_CPU_MAX_ISA"]


def test_caps_grow_from_avx2_to_amx() -> None:
    leaves = [set(cap.flags) for cap in CPU_ISA_CAPS.values()]
    assert list(CPU_ISA_CAPS) == ["avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx"]
    assert all(small < big for small, big in itertools.pairwise(leaves[:4]))
    assert "avx512f" not in CPU_ISA_CAPS["avx2"].flags
    assert CPU_ISA_CAPS["amx"].flags == ("*",)  # everything the CPU has
