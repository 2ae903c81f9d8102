"""samkit.registry on its own; loading is tested in test_model.py."""

from __future__ import annotations

import re

import pytest
import torch

from samkit import model, registry


def test_every_model_type_has_a_checkpoint_a_bundled_file_or_a_hub_repository() -> None:
    assert list(registry.MODEL_TYPES) == [
        "vit_h", "vit_l", "vit_b", "shapes",
        "sam2.1_tiny", "sam2.1_small", "sam2.1_base_plus", "sam2.1_large", "sam3",
    ]  # fmt: skip
    for spec in registry.MODEL_TYPES.values():
        sources = [spec.checkpoint, spec.bundled, spec.hub]
        assert sum(source is not None for source in sources) == 1, spec.name


def test_model_spec_names_the_known_types() -> None:
    assert registry.model_spec("shapes").samples == "scenes"
    message = (
        "SAMKIT_MODEL must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got 'x' (or, "
        "through Hugging Face transformers, one of 'sam2.1_tiny', 'sam2.1_small', "
        "'sam2.1_base_plus', 'sam2.1_large', 'sam3')"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        registry.model_spec("x", name="SAMKIT_MODEL")


def test_the_shapes_architecture_follows_its_config() -> None:
    with torch.device("meta"):
        sam = registry.build_shapes_sam()
    assert sam.image_encoder.img_size == registry.SHAPES_CONFIG.image_size
    assert len(sam.image_encoder.blocks) == registry.SHAPES_CONFIG.encoder_depth


def test_samkit_model_still_offers_the_registry() -> None:
    assert model.MODEL_TYPES is registry.MODEL_TYPES
    assert model.model_spec is registry.model_spec


def test_default_model_type_reads_samkit_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", "vit_l")
    assert registry.default_model_type() == "vit_l"
