"""SAM's training loss: focal + dice on the mask logits, and MSE on the predicted IoU.

As in the SAM paper: focal loss (gamma 2) and dice loss at 20 : 1 on each mask, and the
mean squared error between the IoU head's prediction and the real IoU of the thresholded
mask. Every function takes low-resolution logits and targets of the same shape.

Example:
    >>> import torch
    >>> from samkit.finetune.loss import mask_loss
    >>> target = torch.zeros(2, 8, 8); target[:, 2:6, 2:6] = 1
    >>> good, bad = mask_loss(20 * (target - 0.5), target), mask_loss(-20 * (target - 0.5), target)
    >>> bool((good < bad).all()), tuple(good.shape)
    (True, (2,))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The weight of the focal loss against the dice loss (SAM: 20 : 1).
FOCAL_WEIGHT = 20.0


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Per-mask sigmoid focal loss, averaged over pixels.

    Args:
        logits: Mask logits of shape `(K, H, W)`.
        target: Targets in [0, 1] of shape `(K, H, W)` (soft at boundaries is fine).
        gamma: The focusing exponent.

    Returns:
        A tensor of shape `(K,)`.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    return (ce * (1 - p_t) ** gamma).flatten(1).mean(1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-mask dice loss (1 - soft Dice coefficient, smoothed by 1).

    Args:
        logits: Mask logits of shape `(K, H, W)`.
        target: Targets in [0, 1] of shape `(K, H, W)`.

    Returns:
        A tensor of shape `(K,)`.
    """
    prob = logits.sigmoid().flatten(1)
    flat = target.flatten(1)
    inter = (prob * flat).sum(1)
    return 1 - (2 * inter + 1) / (prob.sum(1) + flat.sum(1) + 1)


def mask_loss(
    logits: torch.Tensor, target: torch.Tensor, focal_weight: float = FOCAL_WEIGHT
) -> torch.Tensor:
    """SAM's mask loss, ``focal_weight * focal + dice``, per mask.

    Args:
        logits: Mask logits of shape `(K, H, W)`.
        target: Targets in [0, 1] of shape `(K, H, W)`.
        focal_weight: The focal loss's weight (the dice loss weighs 1).

    Returns:
        A tensor of shape `(K,)`.
    """
    return focal_weight * focal_loss(logits, target) + dice_loss(logits, target)


def hard_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded logits (``> 0``) with the target (``> 0.5``), per mask.

    Args:
        logits: Mask logits of shape `(K, H, W)`.
        target: Targets in [0, 1] of shape `(K, H, W)`.

    Returns:
        A tensor of shape `(K,)`; 1 where both are empty.
    """
    pred = (logits > 0).flatten(1).float()
    flat = (target > 0.5).flatten(1).float()
    inter = (pred * flat).sum(1)
    union = pred.sum(1) + flat.sum(1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def iou_loss(logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the IoU head and the real IoU of every output.

    Args:
        logits: Mask logits of shape `(K, M, H, W)` (``M`` outputs per prompt).
        iou_pred: The IoU head's predictions, shape `(K, M)`.
        target: Targets of shape `(K, H, W)`.

    Returns:
        A scalar tensor.
    """
    with torch.no_grad():
        real = torch.stack([hard_iou(logits[:, j], target) for j in range(logits.shape[1])], 1)
    return F.mse_loss(iou_pred, real)
