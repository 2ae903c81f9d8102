"""Building SAM models: the official architectures and the bundled ``shapes`` model.

The official model types (``vit_h``, ``vit_l``, ``vit_b``) are built with
segment-anything's own builders. The ``shapes`` model is SAM's exact architecture
(``segment_anything.modeling`` classes), scaled down so that it trains and runs on a
laptop CPU; its checkpoint ships in ``data/models/``.
"""

from __future__ import annotations

from collections.abc import Callable
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

#: Architecture of the bundled ``shapes`` model. Every number here is part of the
#: checkpoint's contract: change one and the committed checkpoint no longer loads.
SHAPES_CONFIG: dict[str, int | tuple[int, ...]] = {
    "image_size": 256,
    "patch_size": 8,
    "encoder_embed_dim": 128,
    "encoder_depth": 4,
    "encoder_num_heads": 4,
    "encoder_global_attn_indexes": (3,),
    "window_size": 8,
    "prompt_embed_dim": 64,
    "decoder_mlp_dim": 256,
    "decoder_num_heads": 4,
}

#: The bundled checkpoint of the ``shapes`` model.
SHAPES_CHECKPOINT = Path(__file__).resolve().parent.parent / "data" / "models" / "sam_shapes.pt"


def build_shapes_sam() -> Sam:
    """Build the (untrained) ``shapes`` architecture from segment-anything's classes.

    Returns:
        A ``segment_anything.modeling.Sam`` with the layout of ``SHAPES_CONFIG``, in
        eval mode, with randomly initialised weights.
    """
    cfg = SHAPES_CONFIG
    image_size = int(cfg["image_size"])  # type: ignore[arg-type]
    patch_size = int(cfg["patch_size"])  # type: ignore[arg-type]
    prompt_embed_dim = int(cfg["prompt_embed_dim"])  # type: ignore[arg-type]
    embedding_size = image_size // patch_size
    global_attn = cfg["encoder_global_attn_indexes"]
    assert isinstance(global_attn, tuple)
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=int(cfg["encoder_depth"]),  # type: ignore[arg-type]
            embed_dim=int(cfg["encoder_embed_dim"]),  # type: ignore[arg-type]
            img_size=image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=int(cfg["encoder_num_heads"]),  # type: ignore[arg-type]
            patch_size=patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=global_attn,
            window_size=int(cfg["window_size"]),  # type: ignore[arg-type]
            out_chans=prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_embed_dim,
            image_embedding_size=(embedding_size, embedding_size),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(
                depth=2,
                embedding_dim=prompt_embed_dim,
                mlp_dim=int(cfg["decoder_mlp_dim"]),  # type: ignore[arg-type]
                num_heads=int(cfg["decoder_num_heads"]),  # type: ignore[arg-type]
            ),
            transformer_dim=prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=prompt_embed_dim,
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
