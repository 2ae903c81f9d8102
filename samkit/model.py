"""The registry of SAM model types, and building and loading them.

:data:`MODEL_TYPES` holds one :class:`ModelType` record per type: its builder, where its
checkpoint comes from, its automatic-mask settings and what kind of sample images suit
it. It is the only code that knows what each type is; :func:`model_spec` is the one
check of a model type's name.

The official model types (``vit_h``, ``vit_l``, ``vit_b``) are built with
segment-anything's own builders. The ``shapes`` model is SAM's exact architecture
(``segment_anything.modeling`` classes), scaled down so that it trains and runs on a
laptop CPU; its checkpoint ships with samkit.

Example:
    >>> from samkit.model import MODEL_TYPES, model_spec
    >>> list(MODEL_TYPES)
    ['vit_h', 'vit_l', 'vit_b', 'shapes']
    >>> model_spec("shapes").samples
    'scenes'
"""

from __future__ import annotations

import functools
import os
import pickle
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch
from segment_anything import sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from samkit import env, files, locations
from samkit.weights import DEFAULT_TIMEOUT_S, Checkpoint, fetch_checkpoint


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


@dataclass(frozen=True)
class ModelType:
    """Everything samkit knows about one model type.

    Attributes:
        name: The model type (``"vit_b"``, ...), as segment-anything names it.
        build: Returns an untrained ``Sam`` of this architecture.
        checkpoint: The official checkpoint to download, or ``None`` for a bundled model.
        bundled: The checkpoint's path inside samkit's data folder, for a bundled model.
        amg_settings: ``SamAutomaticMaskGenerator`` settings that differ from
            segment-anything's defaults for this model.
        samples: ``"photos"`` when the model segments photos, ``"scenes"`` when it only
            knows the generated scenes of simple shapes (``samkit.shapes.make_scene``).
    """

    name: str
    build: Callable[[], Sam]
    checkpoint: Checkpoint | None = None
    bundled: tuple[str, ...] | None = None
    amg_settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    samples: Literal["photos", "scenes"] = "photos"


#: Automatic mask generator settings used for the bundled ``shapes`` model. Shapes are
#: at least a seventh of the image's short side, so a 16x16 grid of points finds them.
SHAPES_AMG_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {
        "points_per_side": 16,
        "points_per_batch": 64,
        "pred_iou_thresh": 0.6,
        "stability_score_thresh": 0.7,
        "box_nms_thresh": 0.7,
        "min_mask_region_area": 0,
    }
)


def _official(name: str, filename: str, sha256: str, size: int | None) -> ModelType:
    return ModelType(
        name=name,
        build=partial(sam_model_registry[name], checkpoint=None),
        checkpoint=Checkpoint(filename=filename, sha256=sha256, size=size),
    )


#: The model types, by name: the official checkpoints (Meta's public record) and the
#: bundled offline model.
MODEL_TYPES: dict[str, ModelType] = dict(
    {
        "vit_h": _official(
            "vit_h",
            "sam_vit_h_4b8939.pth",
            "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            2_564_550_879,
        ),
        "vit_l": _official(
            "vit_l",
            "sam_vit_l_0b3195.pth",
            "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            None,
        ),
        "vit_b": _official(
            "vit_b",
            "sam_vit_b_01ec64.pth",
            "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            375_042_383,
        ),
        "shapes": ModelType(
            name="shapes",
            build=build_shapes_sam,
            bundled=("models", "sam_shapes.pt"),
            amg_settings=SHAPES_AMG_SETTINGS,
            samples="scenes",
        ),
    }
)


def model_spec(model_type: object, name: str = "model_type") -> ModelType:
    """Look up a model type in the registry: the one check of a model type's name.

    Args:
        model_type: A key of :data:`MODEL_TYPES`.
        name: What to call the value in the error message (``"SAMKIT_MODEL"``, ...).

    Returns:
        Its :class:`ModelType` record.

    Raises:
        ValueError: If ``model_type`` is not a known model type; the message lists them.

    Example:
        >>> model_spec("vit_b").checkpoint.filename
        'sam_vit_b_01ec64.pth'
    """
    if not isinstance(model_type, str) or model_type not in MODEL_TYPES:
        valid = ", ".join(repr(key) for key in MODEL_TYPES)
        raise ValueError(f"{name} must be one of {valid}, but got {model_type!r}")
    return MODEL_TYPES[model_type]


#: Keys a checkpoint may wrap its state dict in (``{"model": state_dict}``).
_WRAPPER_KEYS = ("model", "state_dict")


def default_model_type() -> str:
    """Return the model type to use when none is given.

    ``SAMKIT_MODEL`` when set (``make test`` sets it to ``"shapes"``), else ``"vit_h"``
    when the default device is a CUDA GPU and ``"vit_b"`` otherwise.

    Returns:
        A key of :data:`MODEL_TYPES`.

    Raises:
        ValueError: If ``SAMKIT_MODEL`` is set to an unknown model type.
    """
    chosen = env.variable("SAMKIT_MODEL")
    if chosen:
        return model_spec(chosen, name="SAMKIT_MODEL").name
    return "vit_h" if torch.device(env.default_device()).type == "cuda" else "vit_b"


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
    fast: bool = False,
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
        >>> sam = samkit.load_sam("shapes", device="cpu")
        >>> predictor = SamPredictor(sam)
        >>> sam.image_encoder.img_size
        384
        >>> sam.training
        False
    """
    model_type = default_model_type() if model_type is None else model_spec(model_type).name
    if not isinstance(fast, bool):
        raise ValueError(f"fast must be True or False, but got {fast!r}")
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
            else f"a model of none of the known types ({_describe(_shapes_of(state_dict))})"
        )
        hint = f"; pass model_type={found!r}" if found is not None else ""
        raise ValueError(
            f"checkpoint {path} holds {holds}, but model_type {model_type!r} was requested{hint}"
        )
    sam = MODEL_TYPES[model_type].build()
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
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If ``path`` is a directory, or the file is cut off, is an HTML page,
            a JSON document, gzip data or other text, would run code when loaded, or
            does not hold a state dict.
    """
    path = Path(path)
    redownload = (
        "Delete it and download it again (samkit.download_checkpoint or `samkit download MODEL`)."
    )
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix in (".pth", ".pt"))[:5]
        hint = f"; it holds {', '.join(inside)}" if inside else ""
        raise ValueError(
            f"checkpoint {path} is a directory, not a checkpoint file: pass the path of the "
            f".pth file itself{hint}"
        )
    if not path.exists():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    with path.open("rb") as fh:
        head = fh.read(512)
    if not head:
        raise ValueError(
            f"checkpoint {path} is an empty file (0 bytes), not a checkpoint: if it was "
            f"downloaded, the download failed. {redownload}"
        )
    if head.startswith(b"\x08") and b"\x12" in head[1:4] and b"\x3a" in head:
        # protobuf: field 1 (ir_version), field 2 (producer_name), ... field 7 (graph)
        raise ValueError(
            f"checkpoint {path} is an ONNX model, not a PyTorch checkpoint: load_sam reads "
            "the .pth state dict (an ONNX file is what `samkit export-onnx` writes, for "
            "onnxruntime)"
        )
    if _looks_like_html(head):
        raise ValueError(
            f"checkpoint {path} is an HTML page (an error or login page saved under a "
            f"checkpoint's name), not a checkpoint. {redownload}"
        )
    sniffed = files.sniff(head)
    if sniffed is not None and sniffed[0] != "HTML":  # HTML: _looks_like_html's, above
        kind, start = sniffed
        if kind == "gzip":
            raise ValueError(
                f"checkpoint {path} is a gzip file, not a checkpoint: if it holds one, "
                f"decompress it first (gunzip); if not, it is a compressed error page. "
                f"{redownload}"
            )
        what = "a JSON file" if kind == "JSON" else "a text file"
        raise ValueError(
            f"checkpoint {path} is {what}, not a checkpoint (it starts with {start!r}: "
            f"usually an error message a server sent instead of the file). {redownload}"
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
    """Tell which architecture of :data:`MODEL_TYPES` a state dict belongs to.

    The parameter names and shapes are compared against each architecture built on
    PyTorch's ``meta`` device (no memory, no initialisation), so this is cheap even for
    ``vit_h``.

    Args:
        state_dict: Parameter names mapped to tensors.

    Returns:
        The matching model type, or ``None`` when none matches exactly.
    """
    shapes = _shapes_of(state_dict)
    for name in MODEL_TYPES:
        if _expected_shapes(name) == shapes:
            return name
    return None


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
        sam = MODEL_TYPES[model_type].build()
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
    """Whether a file's first bytes are a web page's (checkpoints never start with ``<``).

    A UTF-8 byte-order mark before the page is skipped.
    """
    return head.removeprefix(files.UTF8_BOM).lstrip()[:1] == b"<"


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
