"""The SAM 2.1 and SAM 3 architectures: full size (on the meta device) and small."""

from __future__ import annotations

import re

import pytest
import torch

from samkit.hf.configs import (
    HF_FAMILIES,
    build_model,
    char_tokenizer,
    char_vocabulary,
    check_name,
    config_for,
)
from samkit.model import MODEL_TYPES

#: Parameters of the full-size transformers models (SAM 2.1 without its video memory).
FULL_PARAMETERS = {
    "sam2.1_tiny": 31_440_721,
    "sam2.1_small": 38_538_577,
    "sam2.1_base_plus": 73_328_401,
    "sam2.1_large": 216_924_865,
    "sam3": 840_376_374,
}


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("model_type", list(HF_FAMILIES))
def test_full_size_architecture_has_the_official_parameter_count(model_type: str) -> None:
    with torch.device("meta"):  # no memory, no initialisation
        model = build_model(model_type)
    assert _parameters(model) == FULL_PARAMETERS[model_type]
    assert type(model).__name__ == ("Sam3Model" if model_type == "sam3" else "Sam2Model")


@pytest.mark.slow
@pytest.mark.parametrize("model_type", list(HF_FAMILIES))
def test_small_configuration_keeps_the_size_layout_and_is_tiny(model_type: str) -> None:
    model = build_model(model_type, small=True)
    assert _parameters(model) < 400_000
    assert not model.training
    full, small = config_for(model_type), config_for(model_type, small=True)
    if model_type == "sam3":
        assert small.vision_config.image_size == 224
        assert small.text_config.vocab_size == len(char_vocabulary()) == 514
    else:
        full_backbone = full.vision_config.backbone_config
        small_backbone = small.vision_config.backbone_config
        # each size keeps its heads, windows and input size; only widths and depth shrink
        assert (
            small_backbone.num_attention_heads_per_stage
            == full_backbone.num_attention_heads_per_stage
        )
        assert small_backbone.window_size_per_stage == full_backbone.window_size_per_stage
        assert (
            small.prompt_encoder_config.image_size == full.prompt_encoder_config.image_size == 1024
        )


def test_registry_knows_each_hugging_face_model_type_and_its_repository() -> None:
    hubs = {name: spec.hub for name, spec in MODEL_TYPES.items() if spec.hub is not None}
    assert hubs == {
        "sam2.1_tiny": "facebook/sam2.1-hiera-tiny",
        "sam2.1_small": "facebook/sam2.1-hiera-small",
        "sam2.1_base_plus": "facebook/sam2.1-hiera-base-plus",
        "sam2.1_large": "facebook/sam2.1-hiera-large",
        "sam3": "facebook/sam3",
    }
    assert set(hubs) == set(HF_FAMILIES)


@pytest.mark.parametrize("bad", ["sam2", "SAM3", None, "vit_b"])
def test_check_name_lists_the_model_types(bad: object) -> None:
    with pytest.raises(ValueError, match=re.escape(f"'sam2.1_large', 'sam3', but got {bad!r}")):
        check_name(bad)


@pytest.mark.slow
def test_char_tokenizer_spells_words_and_pads_like_clip() -> None:
    tokenizer = char_tokenizer()
    vocabulary = char_vocabulary()
    encoded = tokenizer("Casco  amarillo", padding="max_length", max_length=32)
    ids = encoded["input_ids"]
    assert len(ids) == 32
    spelled = [vocabulary[c] for c in "casc"] + [vocabulary["o</w>"]]
    assert ids[: len(spelled) + 1] == [0, *spelled]  # lower-cased, one token per letter
    assert sum(encoded["attention_mask"]) == 2 + len("casco") + len("amarillo")
    assert ids[sum(encoded["attention_mask"]) - 1 :] == [1] * (33 - sum(encoded["attention_mask"]))
