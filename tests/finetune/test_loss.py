from __future__ import annotations

import pytest
import torch

from samkit.finetune.loss import dice_loss, focal_loss, hard_iou, iou_loss, mask_loss


def _square(size: int = 8) -> torch.Tensor:
    target = torch.zeros(1, size, size)
    target[0, 2:6, 2:6] = 1
    return target


@pytest.mark.parametrize(
    ("logit_of", "low", "high"),
    [
        (lambda t: 30 * (t - 0.5), 0.0, 1e-6),  # confident and right: no loss
        (lambda t: -30 * (t - 0.5), 0.5, 2.0),  # confident and wrong: a large loss
        (lambda t: torch.zeros_like(t), 0.2, 0.8),  # undecided: in between
    ],
)
def test_dice_and_focal_order_the_predictions(logit_of, low: float, high: float) -> None:  # type: ignore[no-untyped-def]
    target = _square()
    assert low <= float(dice_loss(logit_of(target), target)) <= high
    assert float(focal_loss(logit_of(target), target)) >= 0


def test_focal_is_ce_times_the_focusing_term() -> None:
    logits, target = torch.tensor([[[2.0, -1.0]]]), torch.tensor([[[1.0, 1.0]]])
    p = logits.sigmoid()
    expected = (-(p.log()) * (1 - p) ** 2).mean()
    assert torch.allclose(focal_loss(logits, target), expected[None])


def test_mask_loss_weighs_focal_20_to_1() -> None:
    logits, target = (
        torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(0)),
        _square().expand(3, -1, -1),
    )
    assert torch.allclose(
        mask_loss(logits, target), 20 * focal_loss(logits, target) + dice_loss(logits, target)
    )


@pytest.mark.parametrize(
    ("pred", "target", "iou"),
    [
        ([[1, 1, 0, 0]], [[1, 1, 0, 0]], 1.0),  # equal
        ([[1, 1, 1, 1]], [[1, 1, 0, 0]], 0.5),  # twice too large
        ([[0, 0, 1, 1]], [[1, 1, 0, 0]], 0.0),  # disjoint
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]], 1.0),  # both empty
    ],
)
def test_hard_iou(pred: list[list[int]], target: list[list[int]], iou: float) -> None:
    logits = torch.tensor(pred, dtype=torch.float32)[None] * 2 - 1
    assert float(hard_iou(logits, torch.tensor(target, dtype=torch.float32)[None])) == iou


def test_iou_loss_is_zero_when_the_head_knows_the_iou() -> None:
    target = _square()
    logits = torch.stack([30 * (target - 0.5), -30 * (target - 0.5)], dim=1)  # IoU 1 and 0
    assert float(iou_loss(logits, torch.tensor([[1.0, 0.0]]), target)) == 0.0
    assert float(iou_loss(logits, torch.tensor([[0.0, 1.0]]), target)) == 1.0


def test_empty_batch_gives_empty_losses() -> None:
    empty = torch.zeros(0, 8, 8)
    assert mask_loss(empty, empty).shape == (0,)
