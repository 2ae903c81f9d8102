"""The generator's remembered embeddings: one encoder pass per image, never a stale one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

import samkit
from samkit.amg import embeddings
from samkit.amg.embeddings import REMEMBERED, set_image_once
from samkit.generator import MaskGenerator


@pytest.fixture
def sam() -> Sam:
    """A fresh random model of the bundled architecture (its weights are changed here)."""
    torch.manual_seed(1)
    return samkit.model.build_shapes_sam()


def _count_encoder_runs(model: Sam) -> list[int]:
    runs: list[int] = []
    model.image_encoder.register_forward_hook(lambda *args: runs.append(1))
    return runs


def _scene(seed: int) -> np.ndarray:
    return samkit.shapes.make_scene(seed, 60, 80).image


def test_the_same_image_is_embedded_once_and_gives_the_same_features(sam: Sam) -> None:
    runs = _count_encoder_runs(sam)
    image = _scene(1)
    first, second = SamPredictor(sam), SamPredictor(sam)
    assert set_image_once(first, image) is False
    assert set_image_once(second, image.copy()) is True  # same bytes, another array
    assert runs == [1]
    assert torch.equal(first.features, second.features)
    assert (second.original_size, second.input_size) == (first.original_size, first.input_size)
    plain = SamPredictor(sam)
    plain.set_image(image)
    assert torch.equal(plain.features, second.features)


def test_a_changed_image_or_changed_weights_are_embedded_again(sam: Sam) -> None:
    runs = _count_encoder_runs(sam)
    predictor = SamPredictor(sam)
    image = _scene(2)
    set_image_once(predictor, image)
    image[0, 0] += 1  # changed in place
    assert set_image_once(predictor, image) is False
    before = predictor.features.clone()
    with torch.no_grad():
        for weight in sam.image_encoder.parameters():  # weights changed in place
            weight.add_(0.05 * torch.randn_like(weight))
    assert set_image_once(predictor, image) is False
    assert runs == [1, 1, 1]
    assert not torch.equal(before, predictor.features)
    sam.image_encoder.load_state_dict(sam.image_encoder.state_dict())  # load_state_dict too
    assert set_image_once(predictor, image) is False


def test_another_model_never_gets_this_ones_embedding(sam: Sam) -> None:
    image = _scene(3)
    set_image_once(SamPredictor(sam), image)
    torch.manual_seed(2)
    other = samkit.model.build_shapes_sam()
    assert set_image_once(SamPredictor(other), image) is False


def test_only_the_last_few_are_kept(sam: Sam) -> None:
    predictor = SamPredictor(sam)
    for seed in range(REMEMBERED + 3):
        set_image_once(predictor, _scene(seed))
    assert embeddings.remembered(sam) == REMEMBERED
    assert set_image_once(predictor, _scene(REMEMBERED + 2)) is True  # the newest
    assert set_image_once(predictor, _scene(0)) is False  # the oldest was dropped
    embeddings.forget(sam)
    assert embeddings.remembered(sam) == 0


@pytest.mark.slow  # two whole generator runs
def test_a_second_run_on_the_same_photo_embeds_nothing_and_finds_the_same(sam: Sam) -> None:
    runs = _count_encoder_runs(sam)
    image = samkit.shapes.make_scene(5, 120, 160).image
    settings = samkit.amg_settings("shapes", points_per_side=8, crop_n_layers=1)
    first = MaskGenerator(sam, progress=False, **settings).generate(image)
    assert len(runs) == 5  # the image and its 4 crops
    tuned = {**settings, "pred_iou_thresh": 0.5, "min_mask_region_area": 20}
    MaskGenerator(sam, progress=False, **tuned).generate(image)
    again = MaskGenerator(sam, progress=False, **settings).generate(image)
    assert len(runs) == 5, "a later run on the same photo embedded it again"
    assert [r["bbox"] for r in again] == [r["bbox"] for r in first]
    assert all(
        np.array_equal(a["segmentation"], b["segmentation"])
        for a, b in zip(again, first, strict=True)
    )
