"""The registry of SAM model types: what each type is, and the one check of its name.

:data:`MODEL_TYPES` holds one :class:`ModelType` record per type: its builder, where its
checkpoint comes from, its automatic-mask settings and what kind of sample images suit
it. It is the only code that knows what each type is; :func:`model_spec` is the one
check of a model type's name.

The official model types (``vit_h``, ``vit_l``, ``vit_b``) are built with
segment-anything's own builders. The ``shapes`` model is SAM's exact architecture
(``segment_anything.modeling`` classes), scaled down so that it trains and runs on a
laptop CPU; its checkpoint ships with samkit.

The ``shapes`` model is also added to segment-anything's own ``sam_model_registry``, so
the stock loading line works with it as with the official types::

    sam = sam_model_registry["shapes"](checkpoint="data/models/sam_shapes.pt")

SAM 2.1 (four sizes) and SAM 3 are Hugging Face transformers models, registered here
with their Hub repository (``hub``); :mod:`samkit.hf` loads them, and gives SAM 2.1
``SamPredictor``'s interface.

Example:
    >>> from samkit.registry import MODEL_TYPES, model_spec
    >>> list(MODEL_TYPES)  # doctest: +NORMALIZE_WHITESPACE
    ['vit_h', 'vit_l', 'vit_b', 'shapes', 'sam2.1_tiny', 'sam2.1_small', 'sam2.1_base_plus',
     'sam2.1_large', 'sam3']
    >>> model_spec("shapes").samples
    'scenes'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
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

from samkit import env
from samkit.weights import Checkpoint

__all__ = [
    "MODEL_TYPES",
    "SHAPES_AMG_SETTINGS",
    "SHAPES_CONFIG",
    "ModelType",
    "ShapesConfig",
    "build_sam_shapes",
    "build_shapes_sam",
    "check_not_hub",
    "default_model_type",
    "hub_type",
    "model_spec",
]


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


def build_sam_shapes(checkpoint: str | None = None) -> Sam:
    """segment-anything's builder signature for the ``shapes`` model.

    What ``sam_model_registry["shapes"]`` calls, as ``build_sam_vit_b`` for ``"vit_b"``:
    the architecture, and the weights when ``checkpoint`` is given, read safely
    (``torch.load(..., weights_only=True)``). Like the stock builders, it leaves the
    model on the CPU.

    Args:
        checkpoint: The ``shapes`` checkpoint file (the bundled one is
            ``samkit.download_checkpoint("shapes")``), or ``None`` for random weights.

    Returns:
        The ``Sam``, in eval mode.

    Example:
        >>> from segment_anything import sam_model_registry
        >>> sam_model_registry["shapes"] is build_sam_shapes
        True
    """
    sam = build_shapes_sam()
    if checkpoint is not None:
        state_dict = torch.load(checkpoint, map_location="cpu", weights_only=True)
        sam.load_state_dict(state_dict, strict=True)
    return sam


# The stock ``sam_model_registry[MODEL_TYPE](checkpoint=...)`` line works for the bundled
# model too (the notebooks show that line).
sam_model_registry.setdefault("shapes", build_sam_shapes)


@dataclass(frozen=True)
class ModelType:
    """Everything samkit knows about one model type.

    Attributes:
        name: The model type (``"vit_b"``, ...), as segment-anything names it.
        build: Returns an untrained model of this architecture: a ``Sam``, or for a
            Hugging Face model type the full-size transformers model.
        checkpoint: The official checkpoint to download, or ``None`` for a bundled model.
        bundled: The checkpoint's path inside samkit's data folder, for a bundled model.
        amg_settings: ``SamAutomaticMaskGenerator`` settings that differ from
            segment-anything's defaults for this model.
        samples: ``"photos"`` when the model segments photos, ``"scenes"`` when it only
            knows the generated scenes of simple shapes (``samkit.shapes.make_scene``).
        hub: The Hugging Face Hub repository of a transformers model type (SAM 2.1,
            SAM 3), loaded with ``samkit.hf.load_hf``; ``None`` for segment-anything's.
    """

    name: str
    build: Callable[[], torch.nn.Module]
    checkpoint: Checkpoint | None = None
    bundled: tuple[str, ...] | None = None
    amg_settings: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    samples: Literal["photos", "scenes"] = "photos"
    hub: str | None = None


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


def official_type(name: str, filename: str, sha256: str, size: int | None) -> ModelType:
    return ModelType(
        name=name,
        build=partial(sam_model_registry[name], checkpoint=None),
        checkpoint=Checkpoint(filename=filename, sha256=sha256, size=size),
    )


def hub_type(name: str, repo: str) -> ModelType:
    """The record of a Hugging Face transformers model type (SAM 2.1, SAM 3)."""

    def build() -> torch.nn.Module:
        from samkit.hf.configs import build_model

        model: torch.nn.Module = build_model(name)
        return model

    return ModelType(name=name, build=build, hub=repo)


#: The model types, by name: the official checkpoints (Meta's public record), the
#: bundled offline model, and SAM 2.1 and SAM 3 from the Hugging Face Hub.
MODEL_TYPES: dict[str, ModelType] = dict(
    {
        "vit_h": official_type(
            "vit_h",
            "sam_vit_h_4b8939.pth",
            "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            2_564_550_879,
        ),
        "vit_l": official_type(
            "vit_l",
            "sam_vit_l_0b3195.pth",
            "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            None,
        ),
        "vit_b": official_type(
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
        "sam2.1_tiny": hub_type("sam2.1_tiny", "facebook/sam2.1-hiera-tiny"),
        "sam2.1_small": hub_type("sam2.1_small", "facebook/sam2.1-hiera-small"),
        "sam2.1_base_plus": hub_type("sam2.1_base_plus", "facebook/sam2.1-hiera-base-plus"),
        "sam2.1_large": hub_type("sam2.1_large", "facebook/sam2.1-hiera-large"),
        "sam3": hub_type("sam3", "facebook/sam3"),
    }
)


def check_not_hub(spec: ModelType) -> None:
    """Refuse a Hugging Face model type where segment-anything's ``Sam`` is needed.

    Raises:
        ValueError: If ``spec`` is SAM 2.1 or SAM 3; the message says how to load it.
    """
    if spec.hub is not None:
        predictor = " and samkit.hf.Sam2Predictor for SamPredictor's interface"
        raise ValueError(
            f"model type {spec.name!r} is a Hugging Face transformers model ({spec.hub}), "
            f"not a segment-anything SAM: load it with samkit.hf.load_hf({spec.name!r})"
            + (predictor if spec.name != "sam3" else "")
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
        sam = ", ".join(repr(key) for key, spec in MODEL_TYPES.items() if spec.hub is None)
        hub = ", ".join(repr(key) for key, spec in MODEL_TYPES.items() if spec.hub is not None)
        raise ValueError(
            f"{name} must be one of {sam}, but got {model_type!r} (or, through Hugging Face "
            f"transformers, one of {hub})"
        )
    return MODEL_TYPES[model_type]


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
