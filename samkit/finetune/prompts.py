"""Prompts sampled from the ground truth, as the SAM paper trains them.

Boxes with noise, points inside the mask, and corrective clicks on the error of a
previous prediction.

Everything is in the model's input frame (the image resized so that its long side is
the encoder's input size, as ``SamPredictor`` does); masks are the decoder's
low-resolution targets (a quarter of that size per side).

Example:
    >>> import numpy as np, torch
    >>> from samkit.finetune.prompts import jitter_boxes, sample_clicks
    >>> rng = np.random.default_rng(0)
    >>> boxes = jitter_boxes(torch.tensor([[10.0, 10.0, 50.0, 40.0]]), rng, input_size=384)
    >>> tuple(boxes.shape)
    (1, 4)
    >>> target = torch.zeros(1, 16, 16); target[0, 4:8, 4:8] = 1
    >>> points, labels = sample_clicks(target > 0.5, target, rng, scale=4.0)
    >>> labels.tolist(), bool(16 <= points[0, 0] <= 32)
    ([1], True)
"""

from __future__ import annotations

import numpy as np
import torch

#: SAM's box noise: each side moves by N(0, BOX_NOISE * side length) ...
BOX_NOISE = 0.1
#: ... and by at most this many pixels of a 1024-pixel input (scaled to the input size).
BOX_NOISE_MAX_PX = 20.0


def jitter_boxes(
    boxes: torch.Tensor, rng: np.random.Generator, input_size: int, exact: float = 0.0
) -> torch.Tensor:
    """Move each side of each box by SAM's box noise.

    Args:
        boxes: Boxes in the input frame, shape `(K, 4)`, xyxy.
        rng: The random generator.
        input_size: The encoder's input size (1024 for SAM), which scales the limit.
        exact: The share of boxes left as they are (tight, as an annotation's box).

    Returns:
        The moved boxes, shape `(K, 4)`.
    """
    w = (boxes[:, 2] - boxes[:, 0]).clamp(min=1)
    h = (boxes[:, 3] - boxes[:, 1]).clamp(min=1)
    scale = torch.stack([w, h, w, h], dim=1)
    noise = torch.as_tensor(rng.normal(0, BOX_NOISE, size=tuple(boxes.shape)), dtype=boxes.dtype)
    limit = BOX_NOISE_MAX_PX * input_size / 1024
    keep = torch.as_tensor(rng.random(len(boxes)) < exact)
    moved = boxes + (noise * scale).clamp(-limit, limit).masked_fill(keep[:, None], 0.0)
    return moved.clamp(0, input_size)


def sample_clicks(
    region: torch.Tensor, target: torch.Tensor, rng: np.random.Generator, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per mask, uniform over ``region``, labelled by whether it hits the target.

    With ``region = target > 0.5`` this is a positive point inside the mask; with the
    error of a prediction (``(logits > 0) != target``) it is SAM's corrective click: an
    include click where the object was missed, an exclude click where too much was taken.

    Args:
        region: Where to click, a bool tensor of shape `(K, s, s)` (low-res frame).
        target: The targets, shape `(K, s, s)`, in [0, 1].
        rng: The random generator.
        scale: Input pixels per low-res pixel.

    Returns:
        The clicks in input pixels, shape `(K, 2)` as (x, y), and their labels, shape
        `(K,)`: 1 (include) on the target, 0 (exclude) off it. A mask whose region is
        empty gets a click on the target instead (or at the centre when that is empty too).
    """
    count, side = region.shape[0], region.shape[2]
    if count == 0:
        return torch.zeros((0, 2)), torch.zeros(0, dtype=torch.int64)
    where = region.flatten(1)
    inside = (target > 0.5).flatten(1)
    where = torch.where(where.any(1, keepdim=True), where, inside)
    centre = (target.shape[1] // 2) * side + side // 2
    where = where.clone()
    where[~where.any(1), centre] = True
    # the i-th set pixel of each row, i drawn uniformly below the row's count
    pick = torch.as_tensor(rng.random(count)) * where.sum(1)
    rank = pick.floor().long().clamp(max=where.shape[1] - 1)
    flat = (where.cumsum(1) > rank[:, None]).int().argmax(1)
    y, x = flat // side, flat % side
    points = torch.stack([(x + 0.5) * scale, (y + 0.5) * scale], dim=1).float()
    labels = inside[torch.arange(count), flat].long()
    return points, labels
