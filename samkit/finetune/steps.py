"""One image ready for the decoder, one training step's loss, and the validation mIoU.

Every prompt of a batch of images goes through segment-anything's own
``MaskDecoder.predict_masks`` in one call: the decoder adds the image embedding to the
dense prompt embedding, so a zero image embedding plus ``dense + embedding`` per prompt
gives exactly the per-image result (``decode``).

Validation measures what a user gets: the low-resolution masks are scaled back to the
image with ``Sam.postprocess_masks`` and thresholded, as ``SamPredictor.predict`` does;
a box prompt takes the single-mask output, a point prompt (the point deepest inside the
object) the best-scored of the three, as ``samkit.evaluation`` measures the bundled model.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from samkit.finetune.data import LabeledImage
from samkit.finetune.loss import hard_iou, iou_loss, mask_loss
from samkit.finetune.prompts import jitter_boxes, sample_clicks
from samkit.masks import deepest_point, mask_iou

#: The prompt kinds fine-tuning can sample.
PROMPT_KINDS: tuple[str, ...] = ("box", "point")


@dataclass
class Item:
    """One image, ready for the decoder.

    Attributes:
        embedding: The image embedding, shape `(C, h, w)`.
        soft: Low-resolution targets, area-averaged (soft at boundaries), `(N, s, s)`.
        boxes: Each object's box in the input frame, `(N, 4)` xyxy.
        points: Each object's deepest point in the input frame, `(N, 2)`.
        input_size: The resized image's (height, width) inside the padded input.
        original_size: The image's (height, width).
        masks: Full-resolution masks `(N, H, W)` (validation images only, else None).
    """

    embedding: torch.Tensor
    soft: torch.Tensor
    boxes: torch.Tensor
    points: torch.Tensor
    input_size: tuple[int, int]
    original_size: tuple[int, int]
    masks: npt.NDArray[np.bool_] | None

    @property
    def count(self) -> int:
        """How many objects the image holds."""
        return int(self.soft.shape[0])


def low_res_targets(
    masks: npt.NDArray[np.bool_], input_size: tuple[int, int], size: int, low_res: int
) -> torch.Tensor:
    """Masks as the decoder's soft low-resolution targets.

    Args:
        masks: Bool masks of shape `(N, H, W)`.
        input_size: The (height, width) the image is resized to (long side ``size``).
        size: The encoder's input size (padded square).
        low_res: The side of the decoder's low-resolution masks.

    Returns:
        A float32 tensor of shape `(N, low_res, low_res)` in [0, 1].
    """
    h, w = input_size
    out = []
    for mask in masks:
        resized = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        padded = np.zeros((size, size), dtype=np.float32)
        padded[:h, :w] = resized
        out.append(torch.from_numpy(padded))
    stacked = torch.stack(out)[:, None]
    return F.avg_pool2d(stacked, size // low_res)[:, 0]


def prepare_item(sam: Sam, image: LabeledImage, embedding: torch.Tensor, keep_masks: bool) -> Item:
    """Targets, boxes and points of one image, in the model's frames.

    Args:
        sam: The model (its input size and low-resolution mask size).
        image: The labeled image.
        embedding: Its embedding, `(C, h, w)`.
        keep_masks: Keep the full-resolution masks (for validation).

    Returns:
        The :class:`Item`.
    """
    size = sam.image_encoder.img_size
    transform = ResizeLongestSide(size)
    original = (image.height, image.width)
    input_size = transform.get_preprocess_shape(image.height, image.width, size)
    masks = image.masks()
    low_res = 4 * sam.prompt_encoder.image_embedding_size[0]
    deepest = np.stack([deepest_point(mask) for mask in masks]).astype(np.float32)
    return Item(
        embedding=embedding,
        soft=low_res_targets(masks, input_size, size, low_res),
        boxes=torch.as_tensor(transform.apply_boxes(image.boxes(), original), dtype=torch.float32),
        points=torch.as_tensor(transform.apply_coords(deepest, original), dtype=torch.float32),
        input_size=input_size,
        original_size=original,
        masks=masks if keep_masks else None,
    )


def decode(
    sam: Sam,
    embeddings: torch.Tensor,
    points: tuple[torch.Tensor, torch.Tensor] | None,
    boxes: torch.Tensor | None,
    mask_input: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All four outputs of the decoder for K prompts, each with its own image embedding.

    Args:
        sam: The model.
        embeddings: Each prompt's image embedding, `(K, C, h, w)`.
        points: Coordinates `(K, P, 2)` and labels `(K, P)` in the input frame, or None.
        boxes: Boxes `(K, 4)` in the input frame, or None.
        mask_input: Previous low-resolution logits `(K, 1, s, s)`, or None.

    Returns:
        Low-resolution logits `(K, 4, s, s)` (output 0: the single-mask output) and the
        predicted IoUs `(K, 4)`.
    """
    sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=mask_input)
    return sam.mask_decoder.predict_masks(
        image_embeddings=embeddings.new_zeros((1, *embeddings.shape[1:])),
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense + embeddings,
    )


def _gather(
    items: list[Item], rng: np.random.Generator, max_objects: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Up to ``max_objects`` objects per image: embeddings, soft targets, boxes (K, ...)."""
    chosen = [torch.as_tensor(rng.permutation(item.count)[:max_objects]) for item in items]
    embedding = torch.cat(
        [
            item.embedding[None].expand(len(c), -1, -1, -1)
            for item, c in zip(items, chosen, strict=True)
        ]
    )
    soft = torch.cat([item.soft[c] for item, c in zip(items, chosen, strict=True)])
    boxes = torch.cat([item.boxes[c] for item, c in zip(items, chosen, strict=True)])
    return embedding.to(device), soft.to(device), boxes.to(device)


def batch_loss(
    sam: Sam,
    items: list[Item],
    rng: np.random.Generator,
    prompts: tuple[str, ...],
    max_objects: int,
    corrective: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SAM's loss over a batch of images, one decoder call per kind of prompt.

    Box prompts (with SAM's box noise) train the single-mask output; a point inside the
    object is ambiguous, so only the best of the three multi-mask outputs learns from it.
    With ``corrective``, each kind gets a second round: a click on the error of the first
    prediction, with its logits as ``mask_input``. Every output's IoU prediction learns
    the real IoU.

    Args:
        sam: The model.
        items: The batch's images.
        rng: The random generator of the prompts.
        prompts: Which of ``PROMPT_KINDS`` to sample.
        max_objects: At most this many objects per image.
        corrective: Also train one round of corrective clicks.

    Returns:
        The scalar loss and the mean training IoU of each prompt kind.
    """
    embedding, soft, xyxy = _gather(items, rng, max_objects, sam.device)
    target = (soft > 0.5).float()
    scale = sam.image_encoder.img_size / soft.shape[-1]
    rows = torch.arange(len(soft))
    total = soft.new_zeros(())
    stats: dict[str, float] = {}
    for kind in prompts:
        if kind == "box":
            boxes = jitter_boxes(xyxy, rng, sam.image_encoder.img_size)
            low, iou_pred = decode(sam, embedding, None, boxes)
            total = total + mask_loss(low[:, 0], soft).mean() + iou_loss(low, iou_pred, target)
            best = torch.zeros_like(rows)
            extra: tuple[torch.Tensor, torch.Tensor] | None = None
        else:
            pts, labels = sample_clicks(target > 0.5, target, rng, scale)
            extra = (pts[:, None].to(sam.device), labels[:, None].to(sam.device))
            boxes = None
            low, iou_pred = decode(sam, embedding, extra, None)
            losses = torch.stack([mask_loss(low[:, j], soft) for j in (1, 2, 3)], dim=1)
            best = losses.argmin(dim=1) + 1
            total = total + losses.min(dim=1).values.mean() + iou_loss(low, iou_pred, target)
        stats[f"{kind}_iou"] = float(hard_iou(low[rows, best], target).mean())
        if corrective:
            total = total + _corrective(
                sam, embedding, soft, low[rows, best].detach(), boxes, extra, rng
            )
    return total, stats


def _corrective(
    sam: Sam,
    embedding: torch.Tensor,
    soft: torch.Tensor,
    previous: torch.Tensor,
    boxes: torch.Tensor | None,
    points: tuple[torch.Tensor, torch.Tensor] | None,
    rng: np.random.Generator,
) -> torch.Tensor:
    """The loss of one corrective click on the error of ``previous`` logits `(K, s, s)`."""
    target = (soft > 0.5).float()
    scale = sam.image_encoder.img_size / soft.shape[-1]
    fix, label = sample_clicks((previous > 0) != (target > 0.5), target, rng, scale)
    fix, label = fix[:, None].to(sam.device), label[:, None].to(sam.device)
    if points is not None:
        fix, label = torch.cat([points[0], fix], dim=1), torch.cat([points[1], label], dim=1)
    low, iou_pred = decode(sam, embedding, (fix, label), boxes, previous[:, None])
    return mask_loss(low[:, 0], soft).mean() + iou_loss(low, iou_pred, target)


def _full_masks(sam: Sam, low: torch.Tensor, item: Item) -> npt.NDArray[np.bool_]:
    """Low-res logits `(K, s, s)` as the image's masks `(K, H, W)`, as SamPredictor gives."""
    full = sam.postprocess_masks(low[:, None], item.input_size, item.original_size)
    return (full[:, 0] > sam.mask_threshold).cpu().numpy()


@torch.no_grad()
def validate(sam: Sam, items: list[Item]) -> dict[str, float]:
    """Box and point mIoU on validation images, at full resolution.

    Args:
        sam: The model.
        items: Validation items (with ``masks``).

    Returns:
        ``{"box_miou": ..., "point_miou": ...}``: the mean IoU over every object.
    """
    box_ious: list[float] = []
    point_ious: list[float] = []
    for item in items:
        if item.masks is None:
            raise ValueError(
                "validation items must keep their masks (prepare_item keep_masks=True)"
            )
        embedding = item.embedding[None].expand(item.count, -1, -1, -1).to(sam.device)
        low, _ = decode(sam, embedding, None, item.boxes.to(sam.device))
        found = _full_masks(sam, low[:, 0], item)
        box_ious.extend(float(mask_iou(f, m)) for f, m in zip(found, item.masks, strict=True))
        labels = torch.ones((item.count, 1), dtype=torch.int64, device=sam.device)
        low, iou_pred = decode(sam, embedding, (item.points[:, None].to(sam.device), labels), None)
        best = iou_pred[:, 1:].argmax(dim=1) + 1
        found = _full_masks(sam, low[torch.arange(item.count), best], item)
        point_ious.extend(float(mask_iou(f, m)) for f, m in zip(found, item.masks, strict=True))
    return {"box_miou": float(np.mean(box_ious)), "point_miou": float(np.mean(point_ious))}
