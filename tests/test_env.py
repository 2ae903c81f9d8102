from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from colab_support import install_fake_colab

import samkit
from samkit import env
from samkit.cpu_isa import isa_cap_variables


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.fixture
def no_device_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAMKIT_DEVICE", raising=False)


@pytest.fixture
def fake_colab(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Pretend to be in Colab; return the list that records widget-manager calls."""
    calls: list[str] = []
    install_fake_colab(
        monkeypatch, "output", enable_custom_widget_manager=lambda: calls.append("enabled")
    )
    return calls


def fake_machine(monkeypatch: pytest.MonkeyPatch, cuda: int = 0, mps: bool = False) -> None:
    """Pretend this machine has ``cuda`` CUDA GPUs and, maybe, Apple's MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
    monkeypatch.setattr(env, "_mps_available", lambda: mps)


def test_not_in_colab_here() -> None:
    assert samkit.in_colab() is ("google.colab" in sys.modules)


def test_outside_colab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.chdir(tmp_path)
    assert samkit.in_colab() is False
    assert samkit.enable_widgets() is False
    assert samkit.home_dir() == tmp_path


def test_in_colab(fake_colab: list[str]) -> None:
    assert samkit.in_colab() is True
    assert samkit.home_dir() == Path("/content")
    assert samkit.enable_widgets() is True
    assert fake_colab == ["enabled"]


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [
        # a CUDA GPU wins
        (1, True, "cuda"),
        # an Apple GPU next
        (0, True, "mps"),
        # nothing: the CPU
        (0, False, "cpu"),
    ],
)
def test_default_device(
    monkeypatch: pytest.MonkeyPatch, no_device_env: None, cuda: int, mps: bool, expected: str
) -> None:
    fake_machine(monkeypatch, cuda=cuda, mps=mps)
    assert samkit.env.default_device() == expected


def test_default_device_on_this_machine(no_device_env: None) -> None:
    assert samkit.env.default_device() in ("cuda", "mps", "cpu")
    torch.zeros(1, device=samkit.env.default_device())


@pytest.mark.parametrize(
    ("value", "cuda", "mps", "expected"),
    [
        # force the CPU on a GPU machine
        ("cpu", 1, False, "cpu"),
        # spaces around it are ignored
        ("  cpu ", 0, False, "cpu"),
        # an empty value means "not set"
        ("", 0, False, "cpu"),
        # a given CUDA device that exists
        ("cuda:1", 2, False, "cuda:1"),
        # plain cuda
        ("cuda", 1, False, "cuda"),
        # mps where there is MPS
        ("mps", 0, True, "mps"),
    ],
)
def test_default_device_override(
    monkeypatch: pytest.MonkeyPatch, value: str, cuda: int, mps: bool, expected: str
) -> None:
    fake_machine(monkeypatch, cuda=cuda, mps=mps)
    monkeypatch.setenv("SAMKIT_DEVICE", value)
    assert samkit.env.default_device() == expected


@pytest.mark.parametrize(
    ("value", "cuda", "mps", "message"),
    [
        # a typo
        ("gpu", 1, False, "SAMKIT_DEVICE must be 'cpu', 'cuda', 'cuda:N' or 'mps', but got 'gpu'"),
        # a device type samkit does not support
        (
            "meta",
            0,
            False,
            "SAMKIT_DEVICE must be 'cpu', 'cuda', 'cuda:N' or 'mps', but got 'meta'",
        ),
        # CUDA on a machine without it
        ("cuda", 0, False, "SAMKIT_DEVICE='cuda', but CUDA is not available on this machine"),
        # a GPU index that is not there
        (
            "cuda:2",
            2,
            False,
            "SAMKIT_DEVICE='cuda:2', but this machine has 2 CUDA device(s): use cuda:0 to cuda:1",
        ),
        # MPS on a machine without it
        ("mps", 0, False, "SAMKIT_DEVICE='mps', but MPS is not available on this machine"),
    ],
)
def test_default_device_bad_override(
    monkeypatch: pytest.MonkeyPatch, value: str, cuda: int, mps: bool, message: str
) -> None:
    fake_machine(monkeypatch, cuda=cuda, mps=mps)
    monkeypatch.setenv("SAMKIT_DEVICE", value)
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.env.default_device()


def test_gpu_report_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_machine(monkeypatch, cuda=0, mps=False)
    monkeypatch.setattr(env, "_cpu_count", lambda: 4)
    assert samkit.gpu_report() == (
        "sin GPU: CPU con 4 núcleos\n"
        f"torch {torch.__version__}\n"
        "Para tener GPU en Colab: Entorno de ejecución -> Cambiar tipo de entorno de "
        "ejecución -> Acelerador por hardware: GPU -> Guardar, y corré el notebook de nuevo."
    )


def test_gpu_report_with_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_machine(monkeypatch, cuda=0, mps=True)
    assert "GPU de Apple (MPS) disponible: dispositivo 'mps'" in samkit.gpu_report().splitlines()


def test_gpu_report_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_machine(monkeypatch, cuda=2)
    cards: dict[int, Any] = {
        0: types.SimpleNamespace(name="Tesla T4", total_memory=15 * 1024**3),
        1: types.SimpleNamespace(name="NVIDIA A100", total_memory=int(39.5 * 1024**3)),
    }
    monkeypatch.setattr(torch.cuda, "get_device_properties", cards.__getitem__)
    monkeypatch.setattr(torch.version, "cuda", "12.1")
    assert samkit.gpu_report() == (
        "GPU 0: Tesla T4, 15.0 GiB\n"
        "GPU 1: NVIDIA A100, 39.5 GiB\n"
        f"CUDA 12.1, torch {torch.__version__}"
    )


def test_gpu_report_on_this_machine() -> None:
    report = samkit.gpu_report()
    first = report.splitlines()[0]
    assert first.startswith("GPU 0: " if torch.cuda.is_available() else "sin GPU: CPU con ")
    assert f"torch {torch.__version__}" in report


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),  # unset: the model's own grid
        ("", None),  # blank counts as unset
        ("4", 4),
        (" 32 ", 32),  # blanks around are ignored
    ],
)
def test_amg_points_per_side(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: int | None
) -> None:
    if value is None:
        monkeypatch.delenv("SAMKIT_AMG_POINTS_PER_SIDE", raising=False)
    else:
        monkeypatch.setenv("SAMKIT_AMG_POINTS_PER_SIDE", value)
    assert env.amg_points_per_side() == expected


@pytest.mark.parametrize("value", ["0", "-3", "four", "4.5"])
def test_amg_points_per_side_bad_value(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SAMKIT_AMG_POINTS_PER_SIDE", value)
    with pytest.raises(
        ValueError,
        match=exactly(
            f"SAMKIT_AMG_POINTS_PER_SIDE must be a whole number from 1 up, but got {value!r}"
        ),
    ):
        env.amg_points_per_side()


def _fake_colab_files(monkeypatch: pytest.MonkeyPatch, uploaded: dict[str, bytes]) -> None:
    """A stand-in google.colab with a files.upload() that returns ``uploaded``."""
    colab = types.ModuleType("google.colab")
    files = types.ModuleType("google.colab.files")
    files.upload = lambda: dict(uploaded)  # type: ignore[attr-defined]
    colab.files = files  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.files", files)


def test_colab_upload_returns_the_one_file(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_colab_files(monkeypatch, {"gato.jpg": b"\xff\xd8 pixels"})
    assert env.colab_upload() == ("gato.jpg", b"\xff\xd8 pixels")


@pytest.mark.parametrize(
    "uploaded",
    [
        {},  # the learner closed the dialog without choosing a file
        {"a.jpg": b"1", "b.jpg": b"2"},  # two files
    ],
)
def test_colab_upload_wants_one_file(
    monkeypatch: pytest.MonkeyPatch, uploaded: dict[str, bytes]
) -> None:
    _fake_colab_files(monkeypatch, uploaded)
    with pytest.raises(
        ValueError, match=exactly(f"choose exactly one image file, but got {len(uploaded)} files")
    ):
        env.colab_upload()


def test_colab_upload_outside_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(RuntimeError, match="an upload button needs Google Colab"):
        env.colab_upload()


@pytest.mark.parametrize(
    ("value", "onednn", "aten", "mkl"),
    [
        ("avx2", "AVX2", "avx2", "AVX2"),
        (" AVX512 ", "AVX512_CORE", "avx512", "AVX512"),
        ("avx512_vnni", "AVX512_CORE_VNNI", "avx512", "AVX512_E1"),
        ("avx512_bf16", "AVX512_CORE_BF16", "avx512", "AVX512_E1"),
        ("amx", "AVX512_CORE_AMX", "avx512", "AVX512_E4"),
    ],
)
def test_isa_cap_is_passed_on_to_onednn_torch_mkl_and_openvino(
    monkeypatch: pytest.MonkeyPatch, value: str, onednn: str, aten: str, mkl: str
) -> None:
    for name in isa_cap_variables("avx2"):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    monkeypatch.setenv("SAMKIT_MAX_CPU_ISA", value)
    # torch is loaded already in this process: the cap still goes to child processes
    with pytest.warns(RuntimeWarning, match="torch .*imported before samkit"):
        assert env.apply_cpu_isa_cap() == value.strip().lower()
    assert {name: os.environ[name] for name in isa_cap_variables("avx2")} == {
        "ONEDNN_MAX_CPU_ISA": onednn,
        "DNNL_MAX_CPU_ISA": onednn,
        "OV_CPU_MAX_ISA": onednn,
        "ATEN_CPU_CAPABILITY": aten,
        "MKL_ENABLE_INSTRUCTIONS": mkl,
    }


def test_no_isa_cap_sets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAMKIT_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert env.apply_cpu_isa_cap() is None
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ


def test_bad_isa_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_MAX_CPU_ISA", "sse2")
    with pytest.raises(
        ValueError,
        match=exactly(
            "SAMKIT_MAX_CPU_ISA must be one of 'avx2', 'avx512', 'avx512_vnni', 'avx512_bf16', "
            "'amx', but got 'sse2'"
        ),
    ):
        env.max_cpu_isa()


ISA_PROBE = """
import json
import numpy as np
import samkit  # first: it passes SAMKIT_MAX_CPU_ISA on
import openvino as ov
import openvino.opset13 as ops
import torch

x = ops.parameter([1, 32, 32, 32], np.float32)
w = ops.constant(np.ones((32, 32, 3, 3), np.float32))
model = ov.Model([ops.convolution(x, w, [1, 1], [1, 1], [1, 1], [1, 1])], [x])
compiled = ov.Core().compile_model(model, "CPU")
ops_run = compiled.get_runtime_model().get_ops()
kinds = [op.get_rt_info()["primitiveType"].astype(str) for op in ops_run]
print(json.dumps({"torch": torch.backends.cpu.get_cpu_capability(), "openvino": kinds}))
"""


@pytest.mark.slow
def test_isa_cap_reaches_torch_and_openvino_in_a_new_process() -> None:
    environ = {
        k: v for k, v in os.environ.items() if not k.endswith(("_MAX_CPU_ISA", "CAPABILITY"))
    }
    ran = subprocess.run(
        [sys.executable, "-c", ISA_PROBE],
        env={**environ, "SAMKIT_MAX_CPU_ISA": "avx2"},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    found = json.loads(ran.stdout.strip().splitlines()[-1])
    # AVX2 where the CPU has more (this one: AVX-512) and where AVX2 is all it has
    assert found["torch"] == "AVX2", (found, torch.backends.cpu.get_cpu_capability())
    (conv,) = [kind for kind in found["openvino"] if "conv" in kind]
    assert "avx2" in conv and "avx512" not in conv, found


@pytest.mark.parametrize(
    ("cuda", "mps", "forced", "first_line"),
    [
        # a CUDA GPU
        (1, False, None, "dispositivo elegido: cuda (hay una GPU con CUDA)"),
        # a Mac with Apple's GPU
        (0, True, None, "dispositivo elegido: mps (hay una GPU de Apple (MPS))"),
        # no GPU at all
        (
            0,
            False,
            None,
            "dispositivo elegido: cpu (no hay GPU: SAM corre en la CPU, más lento pero con "
            "los mismos resultados)",
        ),
        # the CPU forced on a Mac
        (0, True, "cpu", "dispositivo elegido: cpu (lo pediste con SAMKIT_DEVICE)"),
    ],
)
def test_device_report_says_which_device_and_how_to_change_it(
    monkeypatch: pytest.MonkeyPatch,
    no_device_env: None,
    cuda: int,
    mps: bool,
    forced: str | None,
    first_line: str,
) -> None:
    fake_machine(monkeypatch, cuda=cuda, mps=mps)
    if forced is not None:
        monkeypatch.setenv("SAMKIT_DEVICE", forced)
    assert samkit.env.device_report().splitlines() == [
        first_line,
        "Para cambiarlo: %env SAMKIT_DEVICE=cpu en una celda antes de cargar el modelo "
        "(en una terminal: SAMKIT_DEVICE=cpu); los valores son cpu, cuda, cuda:N y mps.",
    ]


def test_set_variable_sets_only_samkit_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAMKIT_HOME", raising=False)
    env.set_variable("SAMKIT_HOME", "/tmp/x")
    assert env.variable("SAMKIT_HOME") == "/tmp/x"
    monkeypatch.delenv("SAMKIT_HOME")
    with pytest.raises(KeyError, match="SAMKIT_NOPE is not one of samkit's"):
        env.set_variable("SAMKIT_NOPE", "1")
