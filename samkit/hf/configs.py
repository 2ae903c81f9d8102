"""The architectures of SAM 2.1 and SAM 3 in Hugging Face transformers, full size and small.

Full size is what the official checkpoints on the Hugging Face Hub hold (the same layouts
as transformers' conversion scripts). Small is the same architecture, scaled down, with
random weights: it builds and runs in a fraction of a second on a CPU, with no download,
so that tests and the notebooks' headless runs exercise the real code paths offline.
SAM 2.1's small configurations keep each size's attention heads, windows and input size
(1024), so a prompt gives the same shapes as the real model: low-resolution logits of
256x256. SAM 3's small configuration takes 224x224 images.

SAM 3 reads text through CLIP's tokenizer, whose vocabulary (49408 tokens, learned
merges) comes with the checkpoint. Offline, :func:`char_tokenizer` builds a tokenizer of
the same class (``CLIPTokenizer``, byte-level BPE) from a vocabulary written here: the
256 byte symbols, each alone and at the end of a word, and no merges, so every word is
spelled out one character per token. The small model's text encoder is sized for it.

Example:
    >>> from samkit.hf.configs import HF_FAMILIES, char_tokenizer
    >>> HF_FAMILIES["sam2.1_base_plus"]
    'sam2'
    >>> char_tokenizer()("gato")["input_ids"]
    [0, 72, 66, 85, 336, 1]
"""

from __future__ import annotations

from typing import Any

#: Which transformers model each Hugging Face model type is (``"sam2"`` or ``"sam3"``).
HF_FAMILIES: dict[str, str] = {
    "sam2.1_tiny": "sam2",
    "sam2.1_small": "sam2",
    "sam2.1_base_plus": "sam2",
    "sam2.1_large": "sam2",
    "sam3": "sam3",
}

#: The Hiera image encoder of each SAM 2.1 size (``Sam2HieraDetConfig`` arguments);
#: what is not given is transformers' default, the tiny model's.
SAM2_BACKBONES: dict[str, dict[str, Any]] = {
    "sam2.1_tiny": {},
    "sam2.1_small": {"blocks_per_stage": [1, 2, 11, 2], "global_attention_blocks": [7, 10, 13]},
    "sam2.1_base_plus": {
        "hidden_size": 112,
        "embed_dim_per_stage": [112, 224, 448, 896],
        "num_attention_heads_per_stage": [2, 4, 8, 16],
        "blocks_per_stage": [2, 3, 16, 3],
        "global_attention_blocks": [12, 16, 20],
        "window_positional_embedding_background_size": [14, 14],
    },
    "sam2.1_large": {
        "hidden_size": 144,
        "embed_dim_per_stage": [144, 288, 576, 1152],
        "num_attention_heads_per_stage": [2, 4, 8, 16],
        "blocks_per_stage": [2, 6, 36, 4],
        "global_attention_blocks": [23, 33, 43],
        "window_positional_embedding_background_size": [7, 7],
        "window_size_per_stage": [8, 4, 16, 8],
    },
}

#: Width of the small configurations (every hidden size of the small models).
SMALL_WIDTH = 32

#: Input size of the small SAM 3 (its patches are 14 pixels: 16x16 tokens).
SAM3_SMALL_IMAGE_SIZE = 224

#: Ids of the ``<|startoftext|>`` and ``<|endoftext|>`` tokens in :func:`char_tokenizer`.
BOS_ID, EOS_ID = 0, 1


def check_name(model_type: object) -> str:
    """Return ``model_type`` if it names a SAM 2.1 size or SAM 3.

    Raises:
        ValueError: If it does not; the message lists the names.
    """
    if not isinstance(model_type, str) or model_type not in HF_FAMILIES:
        valid = ", ".join(repr(name) for name in HF_FAMILIES)
        raise ValueError(f"model_type must be one of {valid}, but got {model_type!r}")
    return model_type


def sam2_config(model_type: str, small: bool = False) -> Any:
    """The ``Sam2Config`` of one SAM 2.1 size.

    Args:
        model_type: ``"sam2.1_tiny"``, ``"sam2.1_small"``, ``"sam2.1_base_plus"`` or
            ``"sam2.1_large"``.
        small: Scale it down: stage widths 16-128 (the size's heads per stage kept),
            five blocks, one of them global, decoder width :data:`SMALL_WIDTH`.

    Returns:
        A ``transformers.Sam2Config``.
    """
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2MaskDecoderConfig,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    backbone = dict(SAM2_BACKBONES[model_type])
    if not small:
        widths = backbone.get("embed_dim_per_stage", [96, 192, 384, 768])
        vision = Sam2VisionConfig(
            backbone_config=Sam2HieraDetConfig(**backbone), backbone_channel_list=widths[::-1]
        )
        return Sam2Config(vision_config=vision)
    widths = [16, 32, 64, 128]
    backbone.update(
        hidden_size=widths[0],
        num_attention_heads=backbone.get("num_attention_heads_per_stage", [1])[0],
        embed_dim_per_stage=widths,
        blocks_per_stage=[1, 1, 2, 1],
        global_attention_blocks=[3],  # never a stage's first block (it pools queries)
    )
    vision = Sam2VisionConfig(
        backbone_config=Sam2HieraDetConfig(**backbone),
        backbone_channel_list=widths[::-1],
        fpn_hidden_size=SMALL_WIDTH,
    )
    return Sam2Config(
        vision_config=vision,
        prompt_encoder_config=Sam2PromptEncoderConfig(hidden_size=SMALL_WIDTH),
        mask_decoder_config=Sam2MaskDecoderConfig(
            hidden_size=SMALL_WIDTH,
            mlp_dim=2 * SMALL_WIDTH,
            num_attention_heads=2,
            iou_head_hidden_dim=SMALL_WIDTH,
        ),
    )


def sam3_config(small: bool = False) -> Any:
    """The ``Sam3Config`` of SAM 3, full size (840 M parameters) or small.

    Args:
        small: Scale it down: a 2-layer ViT on 224x224 images, a 1-layer text encoder
            for :func:`char_tokenizer`'s vocabulary, one DETR layer each side, 20
            queries, width :data:`SMALL_WIDTH`.

    Returns:
        A ``transformers.Sam3Config``.
    """
    from transformers import CLIPTextConfig, Sam3Config, Sam3VisionConfig, Sam3ViTConfig

    if not small:
        return Sam3Config()
    width, size = SMALL_WIDTH, SAM3_SMALL_IMAGE_SIZE
    grid = size // 14
    layers: dict[str, Any] = {
        "hidden_size": width,
        "num_attention_heads": 2,
        "intermediate_size": 2 * width,
    }
    vision = Sam3VisionConfig(
        backbone_config=Sam3ViTConfig(
            num_hidden_layers=2,
            image_size=size,
            pretrain_image_size=size,
            window_size=8,
            global_attn_indexes=[1],
            **layers,
        ),
        fpn_hidden_size=width,
        backbone_feature_sizes=[[4 * grid] * 2, [2 * grid] * 2, [grid] * 2],
    )
    text = CLIPTextConfig(
        vocab_size=len(char_vocabulary()),
        projection_dim=width,
        num_hidden_layers=1,
        max_position_embeddings=32,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=EOS_ID,
        **layers,
    )
    return Sam3Config(
        vision_config=vision,
        text_config=text,
        geometry_encoder_config={"num_layers": 1, **layers},
        detr_encoder_config={"num_layers": 1, **layers},
        detr_decoder_config={"num_layers": 1, "num_queries": 20, **layers},
        mask_decoder_config={"hidden_size": width, "num_attention_heads": 2},
    )


def config_for(model_type: str, small: bool = False) -> Any:
    """The transformers configuration of a Hugging Face model type.

    Args:
        model_type: A key of :data:`HF_FAMILIES`.
        small: The scaled-down configuration instead of the full one.

    Returns:
        A ``Sam2Config`` or ``Sam3Config``.

    Raises:
        ValueError: If ``model_type`` is not one of them.
    """
    if HF_FAMILIES[check_name(model_type)] == "sam3":
        return sam3_config(small)
    return sam2_config(model_type, small)


def build_model(model_type: str, small: bool = False) -> Any:
    """Build a Hugging Face model type with random weights, in eval mode.

    Args:
        model_type: A key of :data:`HF_FAMILIES`.
        small: The scaled-down configuration instead of the full one.

    Returns:
        A ``transformers.Sam2Model`` or ``Sam3Model``.
    """
    from transformers import Sam2Model, Sam3Model

    config = config_for(model_type, small)
    model_class = Sam3Model if HF_FAMILIES[model_type] == "sam3" else Sam2Model
    return model_class(config).eval()


def char_vocabulary() -> dict[str, int]:
    """The vocabulary of :func:`char_tokenizer`.

    CLIP's two special tokens, then the 256 byte-level symbols, then each of them as the
    end of a word (``"a</w>"``): 514 tokens.
    """
    from tokenizers import pre_tokenizers

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocabulary = {"<|startoftext|>": BOS_ID, "<|endoftext|>": EOS_ID}
    for symbol in symbols + [f"{s}</w>" for s in symbols]:
        vocabulary[symbol] = len(vocabulary)
    return vocabulary


def char_tokenizer() -> Any:
    """A CLIP tokenizer that needs no download: one token per character (see above).

    Returns:
        A ``transformers.CLIPTokenizer`` (lower-cases, splits words like CLIP's).
    """
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=char_vocabulary(), merges=[])
