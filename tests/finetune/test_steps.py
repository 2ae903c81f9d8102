from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

import samkit
from samkit.finetune.data import load_dataset
from samkit.finetune.embeddings import embed_image
from samkit.finetune.steps import (
    batch_loss,
    decode,
    decode_prompts,
    embed_prompts,
    low_res_targets,
    prepare_item,
    validate,
)
from samkit.images import load_image
from samkit.masks import deepest_point, mask_iou


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a busy CPU far faster than two that wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sam():  # type: ignore[no-untyped-def]
    return samkit.load_sam("shapes", device="cpu")


@pytest.fixture(scope="module")
def items(sam, ring_coco: Path):  # type: ignore[no-untyped-def]
    dataset = load_dataset(ring_coco)
    return [
        prepare_item(sam, image, embed_image(sam, sam.image_encoder, load_image(image.path)), True)
        for image in dataset.images[:3]
    ]


def test_targets_are_soft_masks_in_the_low_res_frame() -> None:
    masks = np.zeros((1, 96, 128), dtype=bool)
    masks[0, 10:50, 20:60] = True
    soft = low_res_targets(masks, (288, 384), 384, 96)
    assert soft.shape == (1, 96, 96) and 0 <= float(soft.min()) and float(soft.max()) == 1.0
    assert float(soft[0, 72:].sum()) == 0.0  # the padding below the image is empty
    assert abs(float(soft.sum()) - 40 * 40 * (96 / 128) ** 2) < 1.0  # area kept


def test_batched_decode_equals_the_predictor_per_image(sam, items) -> None:  # type: ignore[no-untyped-def]
    embeddings = torch.stack([item.embedding for item in items])
    boxes = torch.stack([item.boxes[0] for item in items])
    with torch.no_grad():
        low, iou = decode(sam, embeddings, None, boxes)
    for k, item in enumerate(items):
        with torch.no_grad():
            sparse, dense = sam.prompt_encoder(points=None, boxes=boxes[k : k + 1], masks=None)
            alone, alone_iou = sam.mask_decoder(
                item.embedding[None], sam.prompt_encoder.get_dense_pe(), sparse, dense, True
            )
        assert torch.allclose(low[k, 1:], alone[0], atol=1e-4)
        assert torch.allclose(iou[k, 1:], alone_iou[0], atol=1e-5)


@pytest.mark.slow
def test_boxes_and_points_in_one_call_equal_each_kind_alone(sam, items) -> None:  # type: ignore[no-untyped-def]
    item = items[0]
    k = item.count
    clicks = (item.points[:, None], torch.ones((k, 1), dtype=torch.int64))
    embedding = item.embedding[None].expand(2 * k, -1, -1, -1)
    previous = torch.randn(2 * k, 1, 96, 96)
    with torch.no_grad():
        sparse, dense = embed_prompts(sam, item.boxes, None, clicks)
        low, iou = decode_prompts(sam, embedding, sparse, dense)
        boxes_alone = decode(sam, embedding[:k], None, item.boxes)
        points_alone = decode(sam, embedding[:k], clicks, None)
        # with a corrective click and the previous logits as mask input
        fix = (item.points[:, None] + 3, torch.zeros((k, 1), dtype=torch.int64))
        both = (torch.cat([clicks[0], fix[0]], 1), torch.cat([clicks[1], fix[1]], 1))
        sparse, dense = embed_prompts(sam, item.boxes, fix, both, previous)
        low2, _ = decode_prompts(sam, embedding, sparse, dense)
        box_fix = decode(sam, embedding[:k], fix, item.boxes, previous[:k])
        point_fix = decode(sam, embedding[:k], both, None, previous[k:])
    assert sparse.shape[:2] == (2 * k, 3)
    assert torch.allclose(low[:k], boxes_alone[0], atol=1e-4)
    assert torch.allclose(iou[k:], points_alone[1], atol=1e-5)
    assert torch.allclose(low[k:], points_alone[0], atol=1e-4)
    assert torch.allclose(low2[:k], box_fix[0], atol=1e-4)
    assert torch.allclose(low2[k:], point_fix[0], atol=1e-4)


@pytest.mark.slow
def test_validation_is_what_the_predictor_gives(sam, items, ring_coco: Path) -> None:  # type: ignore[no-untyped-def]
    metrics = validate(sam, items)
    predictor = SamPredictor(sam)
    box_ious, point_ious = [], []
    for image in load_dataset(ring_coco).images[:3]:
        predictor.set_image(load_image(image.path))
        for mask, box in zip(image.masks(), image.boxes(), strict=True):
            found, _, _ = predictor.predict(box=box, multimask_output=False)
            box_ious.append(mask_iou(found[0], mask))
            found, scores, _ = predictor.predict(
                point_coords=deepest_point(mask)[None], point_labels=np.array([1])
            )
            point_ious.append(mask_iou(found[int(np.argmax(scores))], mask))
    assert metrics["box_miou"] == pytest.approx(np.mean(box_ious), abs=2e-3)
    assert metrics["point_miou"] == pytest.approx(np.mean(point_ious), abs=2e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompts", "corrective"),
    [(("box",), False), (("point",), False), (("box", "point"), True)],
)
def test_batch_loss_is_finite_and_reaches_the_decoder(sam, items, prompts, corrective) -> None:  # type: ignore[no-untyped-def]
    for p in sam.mask_decoder.parameters():
        p.requires_grad_(True)
    try:
        loss, stats = batch_loss(sam, items, np.random.default_rng(0), prompts, 8, corrective)
        loss.backward()
        assert torch.isfinite(loss) and set(stats) == {f"{k}_iou" for k in prompts}
        grads = [p.grad for p in sam.mask_decoder.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert all(p.grad is None for p in sam.image_encoder.parameters())
    finally:
        for p in sam.mask_decoder.parameters():
            p.requires_grad_(False)
            p.grad = None


def test_validation_needs_the_masks(sam, items) -> None:  # type: ignore[no-untyped-def]
    item = items[0]
    bare = type(item)(**{**item.__dict__, "masks": None})
    with pytest.raises(ValueError, match="validation items must keep their masks"):
        validate(sam, [bare])
