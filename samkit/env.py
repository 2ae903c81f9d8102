"""Where samkit runs: Colab or not, which device, and the environment variables.

This is the only module that knows about Google Colab, and the only one that reads
environment variables: every ``SAMKIT_*`` variable is listed in :data:`VARIABLES` and read
through :func:`variable`.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path

from samkit.cpu_isa import CPU_ISA_CAPS, isa_cap_variables

#: Every environment variable samkit reads, with what it does (the README's table).
VARIABLES: dict[str, str] = {
    "SAMKIT_MODEL": "Model type used when none is given: `vit_h`, `vit_l`, `vit_b` or "
    "`shapes` (the bundled offline model; `make test` sets it).",
    "SAMKIT_CHECKPOINT": "A checkpoint file for the active model type (fine-tuned, or "
    "placed by hand): `load_sam` and `download_checkpoint` use it instead of downloading.",
    "SAMKIT_DEVICE": "Force the device: `cpu`, `cuda`, `cuda:N` or `mps`.",
    "SAMKIT_HOME": "Folder that checkpoints are downloaded to (and compiled models "
    "cached in); default: the per-user cache (`~/.cache/samkit`), `/content/weights` in "
    "Colab.",
    "SAMKIT_WEIGHTS_URL": "Base URL of a mirror serving the official checkpoint files "
    "under their own names.",
    "SAMKIT_OUTPUT_DIR": "Folder that notebooks write their files to; default "
    "`build/outputs` in a checkout, `/content/samkit_outputs` in Colab.",
    "SAMKIT_FAST": '`0` turns off the fast path that `load_sam(fast="auto")` (the '
    "notebooks) takes on CUDA and on a CPU with OpenVINO; `1` asks for it everywhere.",
    "SAMKIT_FAST_PRECISION": "`auto` (default), `f32`, `bf16` or `int8` for `fast=True` "
    "on a CPU. `auto` times bf16 (where the CPU computes it natively) and int8 (on every "
    "CPU) against f32 on this machine, keeps those at least 1.1x faster whose masks match "
    "the plain ones (mean IoU at least 0.98), and uses the fastest; the choice is cached "
    "with the converted encoder. `int8` and `bf16` only try that one (bf16 only where it "
    "is native), without timing it.",
    "SAMKIT_MAX_CPU_ISA": "Cap the CPU instruction set of torch (ATen, MKL, oneDNN) and "
    "OpenVINO: `avx2`, `avx512`, `avx512_vnni`, `avx512_bf16` or `amx`; unset, no cap. "
    "Read when samkit is imported, so set it before torch is (a notebook's first cell): "
    "a big CPU then measures what an AVX2 laptop would.",
    "SAMKIT_AMG_POINTS_PER_SIDE": "Grid of the automatic mask generator in "
    "`amg_settings` (points per side) for every model, instead of the model's own: a "
    "quick run on a slow CPU (the tests' photo-path run sets 4). Settings passed by name "
    "still win.",
    "SAMKIT_HF_WEIGHTS": "Where SAM 2.1 and SAM 3 (Hugging Face transformers) get their "
    "weights: `hub` (default: the official checkpoints from the Hugging Face Hub), `random` "
    "(the real architecture, random weights, no download) or `small` (a scaled-down "
    "configuration with random weights: offline tests, `make test` sets it).",
}

#: The values of ``SAMKIT_HF_WEIGHTS``.
HF_WEIGHTS = ("hub", "random", "small")

#: The values of ``SAMKIT_FAST_PRECISION``.
FAST_PRECISIONS = ("auto", "f32", "int8", "bf16")

#: The environment variable that forces the device (``cpu``, ``cuda``, ``cuda:N``, ``mps``).
DEVICE_ENV = "SAMKIT_DEVICE"


def variable(name: str) -> str | None:
    """Read one of samkit's environment variables.

    Args:
        name: A key of :data:`VARIABLES`.

    Returns:
        The value with surrounding blanks removed, or ``None`` when it is unset or blank.

    Raises:
        KeyError: If ``name`` is not one of samkit's variables (a typo in samkit itself).

    Example:
        >>> from samkit import env
        >>> "SAMKIT_MODEL" in env.VARIABLES
        True
    """
    if name not in VARIABLES:
        raise KeyError(f"{name} is not one of samkit's environment variables: {list(VARIABLES)}")
    value = os.environ.get(name, "").strip()
    return value or None


def set_variable(name: str, value: str) -> None:
    """Set one of samkit's variables (a key of :data:`VARIABLES`) for this process."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not one of samkit's environment variables: {list(VARIABLES)}")
    os.environ[name] = value


#: Where Colab keeps the notebook's files.
COLAB_HOME = Path("/content")

#: The Colab menu path that gives the notebook a GPU (Colab's Spanish menu names).
COLAB_GPU_MENU = (
    "Entorno de ejecución -> Cambiar tipo de entorno de ejecución -> Acelerador por "
    "hardware: GPU -> Guardar"
)


def amg_points_per_side() -> int | None:
    """``SAMKIT_AMG_POINTS_PER_SIDE`` as a number, or ``None`` when it is unset.

    Returns:
        The points per side of the automatic mask generator's grid, at least 1.

    Raises:
        ValueError: If the variable is set to anything but a whole number from 1 up.
    """
    value = variable("SAMKIT_AMG_POINTS_PER_SIDE")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"SAMKIT_AMG_POINTS_PER_SIDE must be a whole number from 1 up, but got {value!r}"
        )
    return int(value)


def colab_upload() -> tuple[str, bytes]:
    """Ask the learner for one file with Colab's upload button, and return it.

    Returns:
        The file's name and its bytes.

    Raises:
        RuntimeError: Outside Colab (there is no upload button to show).
        ValueError: If no file, or more than one, was chosen.
    """
    if not in_colab():
        raise RuntimeError(
            "an upload button needs Google Colab; elsewhere pass a file path or an "
            "ipywidgets.FileUpload to samkit.load_image"
        )
    uploaded = importlib.import_module("google.colab.files").upload()
    if len(uploaded) != 1:
        raise ValueError(f"choose exactly one image file, but got {len(uploaded)} files")
    [(name, content)] = uploaded.items()
    return str(name), bytes(content)


def in_colab() -> bool:
    """Whether this code runs inside a Google Colab kernel.

    Returns:
        ``True`` when ``google.colab`` is loaded, which Colab's kernel does at start.

    Example:
        ```pycon
        >>> import samkit
        >>> samkit.in_colab()
        False

        ```
    """
    return "google.colab" in sys.modules


def enable_widgets() -> bool:
    """Let Colab show third-party widgets: ``jupyter_bbox_widget``, ``samkit.LiveSegmenter``.

    In Colab this calls ``google.colab.output.enable_custom_widget_manager()``; anywhere
    else (JupyterLab, VS Code) widgets already work and nothing is done.

    Returns:
        ``True`` if the Colab widget manager was enabled, ``False`` outside Colab.

    Example:
        ```pycon
        >>> import samkit
        >>> samkit.enable_widgets()
        False

        ```
    """
    if not in_colab():
        return False
    importlib.import_module("google.colab.output").enable_custom_widget_manager()
    return True


def _mps_available() -> bool:
    """Whether Apple's Metal GPU backend can be used."""
    import torch

    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _check_device(value: str) -> str:
    """Validate a ``SAMKIT_DEVICE`` value against this machine and return it."""
    import torch

    hint = f"{DEVICE_ENV} must be 'cpu', 'cuda', 'cuda:N' or 'mps'"
    try:
        device = torch.device(value)
    except RuntimeError:
        raise ValueError(f"{hint}, but got {value!r}") from None
    if device.type == "cpu":
        return value
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{DEVICE_ENV}={value!r}, but CUDA is not available on this machine")
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"{DEVICE_ENV}={value!r}, but this machine has {count} CUDA device(s): "
                f"use cuda:0 to cuda:{count - 1}"
            )
        return value
    if device.type == "mps":
        if not _mps_available():
            raise ValueError(f"{DEVICE_ENV}={value!r}, but MPS is not available on this machine")
        return value
    raise ValueError(f"{hint}, but got {value!r}")


def default_device() -> str:
    """The device to run SAM on: ``SAMKIT_DEVICE`` if set, else the best one here.

    Returns:
        ``SAMKIT_DEVICE`` when set (checked against this machine), else ``"cuda"`` when
        a CUDA GPU is available, else ``"mps"`` on an Apple GPU, else ``"cpu"``.

    Raises:
        ValueError: If ``SAMKIT_DEVICE`` names an unknown device or one this machine lacks.

    Example:
        ```python
        sam.to(device=samkit.env.default_device())
        ```
    """
    import torch

    forced = variable(DEVICE_ENV)
    if forced:
        return _check_device(forced)
    if torch.cuda.is_available():
        return "cuda"
    if _mps_available():
        return "mps"
    return "cpu"


def _cpu_count() -> int:
    """CPU cores this process may use (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gpu_report() -> str:
    """Describe the accelerator the notebook has, as Spanish text to print.

    The text is for the tutorial's Spanish notebooks; the menu path is Colab's, in
    Colab's Spanish interface.

    Returns:
        One line per CUDA GPU (``GPU 0: <name>, 15.0 GiB``), then the CUDA and torch
        versions; or, with no GPU, ``"sin GPU: CPU con N núcleos"``, the torch version,
        and how to get a GPU in Colab (:data:`COLAB_GPU_MENU`).

    Example:
        ```python
        print(samkit.gpu_report())
        ```
    """
    import torch

    if torch.cuda.is_available():
        lines = []
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            memory = props.total_memory / 1024**3
            lines.append(f"GPU {index}: {props.name}, {memory:.1f} GiB")
        lines.append(f"CUDA {torch.version.cuda}, torch {torch.__version__}")
        return "\n".join(lines)
    lines = [f"sin GPU: CPU con {_cpu_count()} núcleos", f"torch {torch.__version__}"]
    if _mps_available():
        lines.insert(1, "GPU de Apple (MPS) disponible: dispositivo 'mps'")
    lines.append(f"Para tener GPU en Colab: {COLAB_GPU_MENU}, y corré el notebook de nuevo.")
    return "\n".join(lines)


def device_report() -> str:
    """Which device samkit chose and how to change it, as Spanish text to print.

    Returns:
        Two lines: the device :func:`default_device` gives and why, and how to change
        it (``%env SAMKIT_DEVICE=cpu`` in a cell before the model is loaded).

    Raises:
        ValueError: If ``SAMKIT_DEVICE`` names an unknown device or one this machine lacks.
    """
    device = default_device()
    why = {
        "cuda": "hay una GPU con CUDA",
        "mps": "hay una GPU de Apple (MPS)",
        "cpu": "no hay GPU: SAM corre en la CPU, más lento pero con los mismos resultados",
    }.get(device, "")
    if variable(DEVICE_ENV):
        why = f"lo pediste con {DEVICE_ENV}"
    return (
        f"dispositivo elegido: {device} ({why})\n"
        f"Para cambiarlo: %env {DEVICE_ENV}=cpu en una celda antes de cargar el modelo "
        f"(en una terminal: {DEVICE_ENV}=cpu); los valores son cpu, cuda, cuda:N y mps."
    )


def _one_of(name: str, choices: tuple[str, ...]) -> str:
    """The variable ``name``, lower-cased, one of ``choices``; the first when unset or empty.

    Raises:
        ValueError: If it is set to anything else.
    """
    wanted = (variable(name) or choices[0]).strip().lower()
    if wanted not in choices:
        raise ValueError(
            f"{name} must be one of "
            + ", ".join(repr(c) for c in choices)
            + f", but got {wanted!r}"
        )
    return wanted


def fast_precision() -> str:
    """The precision asked of the fast CPU encoder: ``SAMKIT_FAST_PRECISION``.

    Returns:
        ``"auto"`` (the default, also when unset or empty), ``"f32"``, ``"int8"`` or
        ``"bf16"``. What is used is still up to the machine and the masks
        (``samkit.fast.precision_candidates``).

    Raises:
        ValueError: If it is set to anything else.
    """
    return _one_of("SAMKIT_FAST_PRECISION", FAST_PRECISIONS)


def hf_weights() -> str:
    """Where SAM 2.1 and SAM 3 get their weights: ``SAMKIT_HF_WEIGHTS``.

    Returns:
        ``"hub"`` (the default, also when unset or empty), ``"random"`` or ``"small"``.

    Raises:
        ValueError: If it is set to anything else.
    """
    return _one_of("SAMKIT_HF_WEIGHTS", HF_WEIGHTS)


def max_cpu_isa() -> str | None:
    """``SAMKIT_MAX_CPU_ISA``: the instruction set torch and OpenVINO are capped to.

    Returns:
        A key of :data:`CPU_ISA_CAPS`, or ``None`` when it is unset (no cap).

    Raises:
        ValueError: If it is set to anything else.
    """
    if variable("SAMKIT_MAX_CPU_ISA") is None:
        return None
    return _one_of("SAMKIT_MAX_CPU_ISA", tuple(CPU_ISA_CAPS))


def apply_cpu_isa_cap() -> str | None:
    """Pass ``SAMKIT_MAX_CPU_ISA`` on to oneDNN, torch (ATen, MKL) and OpenVINO.

    They read their variables once, when they are loaded: importing this module (the
    first thing ``import samkit`` does, before torch is imported) calls it. Where torch
    or OpenVINO was imported already, the cap is still set for child processes, and a
    ``RuntimeWarning`` says that the loaded one is not capped.

    Returns:
        The cap, or ``None`` when there is none.

    Raises:
        ValueError: If ``SAMKIT_MAX_CPU_ISA`` is not one of its values.
    """
    isa = max_cpu_isa()
    if isa is None:
        return None
    os.environ.update(isa_cap_variables(isa))
    late = [name for name in ("torch", "openvino") if name in sys.modules]
    if late:
        warnings.warn(
            f"SAMKIT_MAX_CPU_ISA={isa}: {' and '.join(late)} "
            f"{'was' if len(late) == 1 else 'were'} imported before samkit, "
            "so it is not capped; set the variable before the first import",
            RuntimeWarning,
            stacklevel=2,
        )
    return isa


# Imported before torch by ``import samkit``: the cap must be in place when torch loads.
apply_cpu_isa_cap()
