"""Building SAM models: the official architectures and the bundled ``shapes`` model.

The official model types (``vit_h``, ``vit_l``, ``vit_b``) are built with
segment-anything's own builders. The ``shapes`` model is SAM's exact architecture
(``segment_anything.modeling`` classes), scaled down so that it trains and runs on a
laptop CPU; its checkpoint ships in ``data/models/``.
"""

from __future__ import annotations

import functools
import os
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from samkit import env
from samkit.weights import download_checkpoint


@dataclass(frozen=True)
class ShapesConfig:
    """The layout of a scaled-down SAM built from segment-anything's classes."""

    image_size: int = 384
    patch_size: int = 16
    encoder_embed_dim: int = 128
    encoder_depth: int = 4
    encoder_num_heads: int = 4
    encoder_global_attn_indexes: tuple[int, ...] = (0, 1, 2, 3)
    window_size: int = 8
    prompt_embed_dim: int = 128
    decoder_mlp_dim: int = 512
    decoder_num_heads: int = 4


#: Architecture of the bundled ``shapes`` model. Every number here is part of the
#: checkpoint's contract: change one and the committed checkpoint no longer loads.
SHAPES_CONFIG = ShapesConfig()

#: The bundled checkpoint of the ``shapes`` model.
SHAPES_CHECKPOINT = Path(__file__).resolve().parent.parent / "data" / "models" / "sam_shapes.pt"


def build_shapes_sam(config: ShapesConfig = SHAPES_CONFIG) -> Sam:
    """Build the (untrained) ``shapes`` architecture from segment-anything's classes.

    Args:
        config: The layout; the bundled model's by default.

    Returns:
        A ``segment_anything.modeling.Sam`` with that layout, in eval mode, with randomly
        initialised weights.
    """
    cfg = config
    embedding_size = cfg.image_size // cfg.patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=cfg.encoder_depth,
            embed_dim=cfg.encoder_embed_dim,
            img_size=cfg.image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=cfg.encoder_num_heads,
            patch_size=cfg.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=cfg.encoder_global_attn_indexes,
            window_size=cfg.window_size,
            out_chans=cfg.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=cfg.prompt_embed_dim,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(cfg.image_size, cfg.image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=cfg.prompt_embed_dim,
                mlp_dim=cfg.decoder_mlp_dim,
                num_heads=cfg.decoder_num_heads,
            ),
            transformer_dim=cfg.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=cfg.prompt_embed_dim,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    sam.eval()
    return sam


#: A plain dict of builders, as segment-anything's ``sam_model_registry``: each returns
#: an untrained ``Sam`` of that architecture (weights are loaded by ``load_sam``).
SAM_BUILDERS: dict[str, Callable[[], Sam]] = {
    "vit_h": partial(sam_model_registry["vit_h"], checkpoint=None),
    "vit_l": partial(sam_model_registry["vit_l"], checkpoint=None),
    "vit_b": partial(sam_model_registry["vit_b"], checkpoint=None),
    "shapes": build_shapes_sam,
}


#: Keys a checkpoint may wrap its state dict in (``{"model": state_dict}``).
_WRAPPER_KEYS = ("model", "state_dict")


def default_model_type() -> str:
    """Return the model type to use when none is given.

    ``SAMKIT_MODEL`` when set (``make test`` sets it to ``"shapes"``), else ``"vit_h"``
    when the default device is a CUDA GPU and ``"vit_b"`` otherwise.

    Returns:
        A key of ``SAM_BUILDERS``.

    Raises:
        ValueError: If ``SAMKIT_MODEL`` is set to an unknown model type.
    """
    chosen = os.environ.get("SAMKIT_MODEL", "").strip()
    if chosen:
        if chosen not in SAM_BUILDERS:
            raise ValueError(f"SAMKIT_MODEL must be one of {_valid_types()}, but got {chosen!r}")
        return chosen
    return "vit_h" if torch.device(env.default_device()).type == "cuda" else "vit_b"


def load_sam(
    model_type: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    fast: bool = False,
) -> Sam:
    """Build SAM, load its weights safely, and move it to a device, in eval mode.

    The weights are read with ``torch.load(..., weights_only=True)``: a checkpoint that
    would run code when loaded is refused, and its code never runs. A float16
    checkpoint loads into the float32 model, and ``{"model": state_dict}`` is unwrapped.

    Args:
        model_type: A key of ``SAM_BUILDERS`` (``"vit_h"``, ``"vit_l"``, ``"vit_b"``,
            ``"shapes"``). Defaults to ``default_model_type()``.
        checkpoint: A checkpoint file holding a state dict for that architecture. By
            default the official checkpoint is downloaded (and verified) with
            ``download_checkpoint``, and ``"shapes"`` uses the bundled one.
        device: Where to put the model (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
            Defaults to ``samkit.env.default_device()`` (``SAMKIT_DEVICE`` overrides).
        fast: Put the image encoder on the fastest backend of the device (OpenVINO on a
            CPU, converted once and cached next to the weights; float16 autocast on
            CUDA). The same embedding; see ``samkit.fast.accelerate``.

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
        >>> sam = samkit.load_sam("shapes", device="cpu")  # doctest: +SKIP
        >>> predictor = SamPredictor(sam)  # doctest: +SKIP
    """
    if model_type is None:
        model_type = default_model_type()
    elif not isinstance(model_type, str) or model_type not in SAM_BUILDERS:
        raise ValueError(f"model_type must be one of {_valid_types()}, but got {model_type!r}")
    if not isinstance(fast, bool):
        raise ValueError(f"fast must be True or False, but got {fast!r}")
    target = _resolve_device(device)
    if checkpoint is None:
        path = download_checkpoint(model_type)
    elif isinstance(checkpoint, str | os.PathLike) and str(checkpoint).strip():
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint file not found: {path}")
    else:
        raise ValueError(f"checkpoint must be a file path or None, but got {checkpoint!r}")
    state_dict = read_state_dict(path)
    found = checkpoint_model_type(state_dict)
    if found != model_type:
        holds = (
            f"a {found!r} model"
            if found is not None
            else f"a model of none of the known types ({_describe(_shapes_of(state_dict))})"
        )
        hint = f"; pass model_type={found!r}" if found is not None else ""
        raise ValueError(
            f"checkpoint {path} holds {holds}, but model_type {model_type!r} was requested{hint}"
        )
    sam = SAM_BUILDERS[model_type]()
    sam.load_state_dict(state_dict, strict=True)
    sam.to(target)
    sam.eval()
    if fast:
        from samkit.fast import accelerate

        sam = accelerate(sam, path)
    return sam


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint's state dict safely (``weights_only=True``, onto the CPU).

    Args:
        path: The checkpoint file.

    Returns:
        The state dict: parameter names mapped to tensors (unwrapped from
        ``{"model": ...}`` when wrapped).

    Raises:
        ValueError: If the file is cut off, is an HTML page, would run code when
            loaded, or does not hold a state dict.
    """
    path = Path(path)
    redownload = (
        "Delete it and download it again (samkit.download_checkpoint or `samkit download MODEL`)."
    )
    with path.open("rb") as fh:
        head = fh.read(64)
    if not head:
        raise ValueError(f"checkpoint {path} is empty: the download failed. {redownload}")
    if _looks_like_html(head):
        raise ValueError(
            f"checkpoint {path} is an HTML page (an error or login page saved under a "
            f"checkpoint's name), not a checkpoint. {redownload}"
        )
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
                f"checkpoint {path} is an HTML page, not a checkpoint. {redownload}"
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
            f"cut off). {redownload}"
        ) from None
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
    """Tell which architecture of ``SAM_BUILDERS`` a state dict belongs to.

    The parameter names and shapes are compared against each architecture built on
    PyTorch's ``meta`` device (no memory, no initialisation), so this is cheap even for
    ``vit_h``.

    Args:
        state_dict: Parameter names mapped to tensors.

    Returns:
        The matching model type, or ``None`` when none matches exactly.
    """
    shapes = _shapes_of(state_dict)
    for name in SAM_BUILDERS:
        if _expected_shapes(name) == shapes:
            return name
    return None


def _valid_types() -> str:
    """The valid model types, quoted, for error messages."""
    return ", ".join(repr(name) for name in SAM_BUILDERS)


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


def _shapes_of(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Parameter names mapped to shapes."""
    return {key: tuple(value.shape) for key, value in state_dict.items()}


@functools.cache
def _expected_shapes(model_type: str) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of an architecture, built on the meta device (no memory)."""
    with torch.device("meta"):
        sam = SAM_BUILDERS[model_type]()
    return _shapes_of(sam.state_dict())


def _describe(shapes: dict[str, tuple[int, ...]]) -> str:
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


def _looks_like_html(head: bytes) -> bool:
    """Whether a file's first bytes are a web page's (checkpoints never start with ``<``)."""
    return head.lstrip()[:1] == b"<"


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
