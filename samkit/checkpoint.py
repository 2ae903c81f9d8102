"""Reading a checkpoint file safely, and telling which architecture it holds.

:func:`read_state_dict` reads with ``torch.load(..., weights_only=True)``, so a file that
would run code when loaded is refused, and names what a file is when it is no
checkpoint at all (an HTML page, a JSON error, gzip data, a cut-off download).
:func:`checkpoint_model_type` matches a state dict against every architecture of
:data:`samkit.registry.MODEL_TYPES`.
"""

from __future__ import annotations

import functools
import os
import pickle
import warnings
from pathlib import Path

import torch

from samkit import files
from samkit.registry import MODEL_TYPES

#: What every message about a broken checkpoint file ends with.
REDOWNLOAD = (
    "Delete it and download it again (samkit.download_checkpoint or `samkit download MODEL`)."
)

__all__ = ["checkpoint_model_type", "describe_shapes", "read_state_dict", "shapes_of"]


#: Keys a checkpoint may wrap its state dict in (``{"model": state_dict}``).
_WRAPPER_KEYS = ("model", "state_dict")


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint's state dict safely (``weights_only=True``, onto the CPU).

    Args:
        path: The checkpoint file.

    Returns:
        The state dict: parameter names mapped to tensors (unwrapped from
        ``{"model": ...}`` when wrapped).

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If ``path`` is a directory, or the file is cut off, is an HTML page,
            a JSON document, gzip data or other text, would run code when loaded, or
            does not hold a state dict.
    """
    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in (".pth", ".pt"))[:5]
        hint = f"; it holds {', '.join(inside)}" if inside else ""
        raise ValueError(
            f"checkpoint {path} is a directory, not a checkpoint file: pass the path of the "
            f".pth file itself{hint}"
        )
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    _refuse_what_is_no_checkpoint(path)
    loaded = _torch_load(path)
    if isinstance(loaded, dict) and len(loaded) == 1:
        ((key, inner),) = loaded.items()
        if key in _WRAPPER_KEYS and isinstance(inner, dict):
            loaded = inner
    if (
        not isinstance(loaded, dict)
        or not loaded
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())
    ):
        raise ValueError(
            f"checkpoint {path} must hold a state dict (parameter names mapped to tensors), "
            f"but holds {_summarise(loaded)}"
        )
    return loaded


def checkpoint_model_type(state_dict: dict[str, torch.Tensor]) -> str | None:
    """Tell which architecture of :data:`MODEL_TYPES` a state dict belongs to.

    The parameter names and shapes are compared against each architecture built on
    PyTorch's ``meta`` device (no memory, no initialisation), so this is cheap even for
    ``vit_h``.

    Args:
        state_dict: Parameter names mapped to tensors.

    Returns:
        The matching model type, or ``None`` when none matches exactly.
    """
    shapes = shapes_of(state_dict)
    for name, spec in MODEL_TYPES.items():
        if spec.hub is None and _expected_shapes(name) == shapes:
            return name
    return None


def shapes_of(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Parameter names mapped to shapes."""
    return {key: tuple(value.shape) for key, value in state_dict.items()}


@functools.cache
def _expected_shapes(model_type: str) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of an architecture, built on the meta device (no memory)."""
    with torch.device("meta"):
        sam = MODEL_TYPES[model_type].build()
    return shapes_of(sam.state_dict())


def describe_shapes(shapes: dict[str, tuple[int, ...]]) -> str:
    """Summarise the image encoder a state dict describes, for error messages."""
    patch = shapes.get("image_encoder.patch_embed.proj.weight")
    pos = shapes.get("image_encoder.pos_embed")
    if patch is None or len(patch) != 4 or pos is None or len(pos) != 4:
        return f"{len(shapes)} tensors, without SAM's image encoder"
    depth = len({key.split(".")[2] for key in shapes if key.startswith("image_encoder.blocks.")})
    return (
        f"image encoder with embed dim {patch[0]}, patch size {patch[2]}, depth {depth}, "
        f"input size {pos[1] * patch[2]}"
    )


def _summarise(value: object) -> str:
    """A short description of what a checkpoint held instead of a state dict."""
    if isinstance(value, dict):
        if not value:
            return "an empty dict"
        keys = ", ".join(repr(key) for key in list(value)[:5])
        return f"a dict with keys {keys}" + (", ..." if len(value) > 5 else "")
    return f"a {type(value).__name__}"


def _unpickling_detail(message: str) -> str:
    """Pick the line of torch's weights-only error that says what was refused."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or "Unsupported" in line or "invalid load key" in line:
            return line
    return lines[-1] if lines else "unreadable pickle"


def _refuse_what_is_no_checkpoint(path: Path) -> None:
    """Raise when a file's first bytes say it is empty, a web page, JSON, gzip or text."""
    with path.open("rb") as fh:
        head = fh.read(512)
    if not head:
        raise ValueError(
            f"checkpoint {path} is an empty file (0 bytes), not a checkpoint: if it was "
            f"downloaded, the download failed. {REDOWNLOAD}"
        )
    if head.startswith(b"\x08") and b"\x12" in head[1:4] and b"\x3a" in head:
        # protobuf: field 1 (ir_version), field 2 (producer_name), ... field 7 (graph)
        raise ValueError(
            f"checkpoint {path} is an ONNX model, not a PyTorch checkpoint: load_sam reads "
            "the .pth state dict (an ONNX file is what `samkit export-onnx` writes, for "
            "onnxruntime)"
        )
    sniffed = files.sniff(head)
    if sniffed is None:
        return
    kind, start = sniffed
    if kind == "HTML":
        raise ValueError(
            f"checkpoint {path} is an HTML page (an error or login page saved under a "
            f"checkpoint's name), not a checkpoint. {REDOWNLOAD}"
        )
    if kind == "gzip":
        raise ValueError(
            f"checkpoint {path} is a gzip file, not a checkpoint: if it holds one, "
            f"decompress it first (gunzip); if not, it is a compressed error page. "
            f"{REDOWNLOAD}"
        )
    what = "a JSON file" if kind == "JSON" else "a text file"
    raise ValueError(
        f"checkpoint {path} is {what}, not a checkpoint (it starts with {start!r}: "
        f"usually an error message a server sent instead of the file). {REDOWNLOAD}"
    )


def _torch_load(path: Path) -> object:
    """``torch.load(path, weights_only=True)``, its refusals said in plain words."""
    try:
        with warnings.catch_warnings():
            # Older pickle protocols only trigger a notice; weights_only still applies.
            warnings.filterwarnings(
                "ignore", message="Detected pickle protocol", category=UserWarning
            )
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unpickling_detail(str(exc))
        if "Unsupported operand 60" in detail or "invalid load key, '<'" in detail:
            raise ValueError(
                f"checkpoint {path} is an HTML page, not a checkpoint. {REDOWNLOAD}"
            ) from None
        raise ValueError(
            f"Refused to load {path}: it is not a plain weights file, and loading it could "
            f"run code from the file (torch.load with weights_only=True stopped at: {detail}). "
            "samkit only loads plain state dicts; if you trust the file's source, re-save "
            "its weights with torch.save(model.state_dict(), path)."
        ) from None
    except (RuntimeError, EOFError, IndexError):
        # Cut-off files surface as "PytorchStreamReader failed reading zip archive",
        # "unexpected EOF", EOFError or IndexError, depending on where the cut falls.
        raise ValueError(
            f"checkpoint {path} is incomplete or corrupted (the download was probably "
            f"cut off). {REDOWNLOAD}"
        ) from None
    return loaded
