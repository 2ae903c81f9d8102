"""Loading SAM: a model type's checkpoint, downloaded or found, into a model on a device.

What each model type is lives in :mod:`samkit.registry` and reading a checkpoint file
in :mod:`samkit.checkpoint`; their public names are importable from here too. SAM 2.1
and SAM 3 are in the registry too, but are transformers models: :mod:`samkit.hf` loads
them, and :func:`load_sam` and :func:`download_checkpoint` say so.

Example:
    >>> from samkit.model import MODEL_TYPES, model_spec
    >>> list(MODEL_TYPES)[:4]
    ['vit_h', 'vit_l', 'vit_b', 'shapes']
    >>> model_spec("shapes").samples
    'scenes'
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Literal, cast

import torch
from segment_anything.modeling import (
    Sam,
)

from samkit import env, locations
from samkit.checkpoint import (
    checkpoint_model_type,
    describe_shapes,
    read_state_dict,
    shapes_of,
)
from samkit.registry import (
    MODEL_TYPES,
    SHAPES_AMG_SETTINGS,
    SHAPES_CONFIG,
    ModelType,
    ShapesConfig,
    build_shapes_sam,
    check_not_hub,
    default_model_type,
    model_spec,
)
from samkit.weights import DEFAULT_TIMEOUT_S, fetch_checkpoint

__all__ = [
    "MODEL_TYPES",
    "SHAPES_AMG_SETTINGS",
    "SHAPES_CONFIG",
    "ModelType",
    "ShapesConfig",
    "build_shapes_sam",
    "checkpoint_model_type",
    "default_model_type",
    "download_checkpoint",
    "fast_wanted",
    "load_sam",
    "model_spec",
    "read_state_dict",
]


def _checkpoint_from_env(model_type: str) -> Path | None:
    """``SAMKIT_CHECKPOINT`` when set and ``model_type`` is the active model type."""
    chosen = env.variable("SAMKIT_CHECKPOINT")
    if chosen is None or model_type != default_model_type():
        return None
    path = Path(chosen).expanduser()
    fix = "Point it at a checkpoint file, or unset it to download the official checkpoint."
    if path.is_dir():
        raise ValueError(
            f"SAMKIT_CHECKPOINT names a directory, not a checkpoint file: {path}. {fix}"
        )
    if not path.exists():
        raise FileNotFoundError(
            f"SAMKIT_CHECKPOINT names a file that does not exist: {path}. {fix}"
        )
    if path.stat().st_size == 0:
        raise ValueError(f"SAMKIT_CHECKPOINT names an empty file (0 bytes): {path}. {fix}")
    return path


def download_checkpoint(
    model_type: str,
    dest_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Return a model type's checkpoint file, downloading and verifying it when needed.

    For an official model type the checkpoint is downloaded once, verified (sha256) and
    kept (see ``samkit.weights.fetch_checkpoint``); a bundled model's file is returned
    as it is. ``SAMKIT_CHECKPOINT``, when set, is returned for the active model type
    (``samkit.default_model_type()``) without any download: a fine-tuned or hand-placed
    checkpoint.

    Args:
        model_type: ``"vit_h"``, ``"vit_l"``, ``"vit_b"`` or ``"shapes"``.
        dest_dir: Directory to keep a download in; created when missing. Defaults to
            ``samkit.locations.weights_dir()`` (``SAMKIT_HOME``).
        progress: Show a progress bar while downloading.
        timeout: Seconds to wait for the connection and for each block of data.

    Returns:
        The path of the checkpoint.

    Raises:
        ValueError: If an argument or ``SAMKIT_WEIGHTS_URL`` is not valid.
        FileNotFoundError: If ``SAMKIT_CHECKPOINT`` or the bundled file is missing.
        samkit.weights.ChecksumError: If a download does not match the sha256 on record.
        samkit.weights.DownloadError: If the download fails; the message says why.

    Example:
        >>> import samkit
        >>> samkit.download_checkpoint("shapes").name
        'sam_shapes.pt'
    """
    spec = model_spec(model_type)
    check_not_hub(spec)
    from_env = _checkpoint_from_env(spec.name)
    if from_env is not None:
        return from_env
    if spec.bundled is not None:
        return locations.data_file(*spec.bundled)
    if spec.checkpoint is None:  # pragma: no cover - every record has one or the other
        raise RuntimeError(f"model type {spec.name!r} has neither a download nor a file")
    return fetch_checkpoint(spec.checkpoint, dest_dir, progress, timeout=timeout)


def load_sam(
    model_type: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    fast: bool | Literal["auto"] = False,
) -> Sam:
    """Build SAM, load its weights safely, and move it to a device, in eval mode.

    The weights are read with ``torch.load(..., weights_only=True)``: a checkpoint that
    would run code when loaded is refused, and its code never runs. A float16
    checkpoint loads into the float32 model, and ``{"model": state_dict}`` is unwrapped.

    Args:
        model_type: A key of :data:`MODEL_TYPES` (``"vit_h"``, ``"vit_l"``, ``"vit_b"``,
            ``"shapes"``). Defaults to ``default_model_type()``.
        checkpoint: A checkpoint file holding a state dict for that architecture. By
            default :func:`download_checkpoint` gives it: ``SAMKIT_CHECKPOINT`` for the
            active model type, the bundled file for ``"shapes"``, else the official
            checkpoint, downloaded and verified.
        device: Where to put the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
            Defaults to ``samkit.env.default_device()`` (``SAMKIT_DEVICE`` overrides).
        fast: Put the image encoder on the fastest backend of the device (OpenVINO on a
            CPU, converted once and cached next to the weights; float16 autocast on
            CUDA). The same embedding; see ``samkit.fast.accelerate``. ``"auto"`` (what
            the notebooks pass) does so where it helps and where it can, without a
            warning otherwise: on CUDA, and on a CPU where OpenVINO is installed; unless
            ``SAMKIT_FAST=0`` turns it off (see :func:`fast_wanted`). Either way
            ``sam.image_encoder.fast_info`` says what was done.

    Returns:
        A ``segment_anything.modeling.Sam`` in eval mode, ready for ``SamPredictor``.

    Raises:
        ValueError: If an argument is not valid, or the checkpoint holds another
            architecture than ``model_type``, or is not a SAM state dict.
        FileNotFoundError: If ``checkpoint`` does not exist.
        samkit.weights.DownloadError: If the default checkpoint cannot be downloaded.

    Example:
        >>> import samkit
        >>> from segment_anything import SamPredictor
        >>> sam = samkit.load_sam("shapes", device="cpu")
        >>> predictor = SamPredictor(sam)
        >>> sam.image_encoder.img_size
        384
        >>> sam.training
        False
    """
    model_type = default_model_type() if model_type is None else model_spec(model_type).name
    check_not_hub(MODEL_TYPES[model_type])
    if not isinstance(fast, bool) and fast != "auto":
        raise ValueError(f"fast must be True, False or 'auto', but got {fast!r}")
    target = _resolve_device(device)
    if checkpoint is None:
        path = download_checkpoint(model_type)
    elif isinstance(checkpoint, str | os.PathLike) and str(checkpoint).strip():
        path = Path(checkpoint).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"checkpoint file not found: {path}")
    else:
        raise ValueError(f"checkpoint must be a file path or None, but got {checkpoint!r}")
    state_dict = read_state_dict(path)
    found = checkpoint_model_type(state_dict)
    if found != model_type:
        holds = (
            f"a {found!r} model"
            if found is not None
            else f"a model of none of the known types ({describe_shapes(shapes_of(state_dict))})"
        )
        hint = f"; pass model_type={found!r}" if found is not None else ""
        raise ValueError(
            f"checkpoint {path} holds {holds}, but model_type {model_type!r} was requested{hint}"
        )
    sam = cast(Sam, MODEL_TYPES[model_type].build())
    sam.load_state_dict(state_dict, strict=True)
    sam.to(target)
    sam.eval()
    if fast == "auto":
        fast = fast_wanted(target)
        if not fast:
            from samkit.fast.info import FastInfo

            sam.image_encoder.fast_info = FastInfo("torch", "f32", _why_not_fast(target))
    if fast:
        from samkit.fast import accelerate

        sam = accelerate(sam, path)
    return sam


def fast_wanted(device: str | torch.device) -> bool:
    """What ``load_sam(..., fast="auto")`` chooses on a device.

    ``SAMKIT_FAST=0`` (or ``false``, ``no``, ``off``) turns it off, ``SAMKIT_FAST=1``
    (``true``, ``yes``, ``on``) asks for it as ``fast=True`` does; unset, it is on for a
    CUDA GPU, and for a CPU where OpenVINO can be imported.

    Args:
        device: The model's device.

    Returns:
        Whether to put the image encoder on the fast path.

    Raises:
        ValueError: If ``SAMKIT_FAST`` is set to anything else.

    Example:
        >>> fast_wanted("mps")
        False
    """
    chosen = (env.variable("SAMKIT_FAST") or "").lower()
    if chosen in _OFF:
        return False
    if chosen in _ON:
        return True
    if chosen:
        raise ValueError(
            f"SAMKIT_FAST must be 1 or 0 (or true/false, yes/no, on/off), but got {chosen!r}"
        )
    kind = torch.device(device).type
    if kind == "cuda":
        return True
    return kind == "cpu" and importlib.util.find_spec("openvino") is not None


_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def _why_not_fast(device: torch.device) -> str:
    """Why ``fast="auto"`` kept the plain encoder (``FastInfo.detail``)."""
    if (env.variable("SAMKIT_FAST") or "").lower() in _OFF:
        return "SAMKIT_FAST=0 turned the fast path off"
    if device.type == "cpu":
        return "OpenVINO is not installed (pip install openvino nncf adds it)"
    return f"there is no fast backend for device {device.type!r}"


def _resolve_device(device: object) -> torch.device:
    """Validate ``device`` (``None`` means ``samkit.env.default_device()``)."""
    if device is None:
        return torch.device(env.default_device())
    if not isinstance(device, str | torch.device):
        raise ValueError(
            f"device must be a string such as 'cpu' or 'cuda:0', or a torch.device, but "
            f"got {device!r}"
        )
    try:
        target = torch.device(device)
    except RuntimeError:
        raise ValueError(
            f"device must be a device name such as 'cpu', 'cuda', 'cuda:0' or 'mps', but "
            f"got {device!r}"
        ) from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(target)!r} was requested, but PyTorch sees no CUDA GPU here; use "
            "device='cpu' (in Colab: Runtime > Change runtime type > GPU)"
        )
    if target.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device {str(target)!r} was requested, but Apple's MPS backend is not available "
            "here; use device='cpu'"
        )
    return target
