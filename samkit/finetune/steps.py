"""One image ready for the decoder, one training step's loss, and the validation mIoU.

Every prompt of a batch of images, boxes and points together, goes through
segment-anything's own ``MaskDecoder.predict_masks`` in one call: the decoder adds the
image embedding to the dense prompt embedding, so a zero image embedding plus
``dense + embedding`` per prompt gives exactly the per-image result
(``decode_prompts``), and a box prompt has as many sparse tokens as a point prompt
(segment-anything pads a prompt without a box with one point).

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
    return decode_prompts(sam, embeddings, sparse, dense)


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


Clicks = tuple[torch.Tensor, torch.Tensor]


def embed_prompts(
    sam: Sam,
    boxes: torch.Tensor,
    box_clicks: Clicks | None,
    point_clicks: Clicks | None,
    masks: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt embeddings of box prompts then point prompts, to decode in one call.

    A box prompt with P clicks and a point prompt with P + 1 clicks have as many sparse
    tokens (segment-anything pads a prompt without a box with one point), so both kinds
    go through the decoder together.

    Args:
        sam: The model.
        boxes: The box prompts' boxes, `(B, 4)` (B may be 0).
        box_clicks: Clicks added to the boxes, `(B, P, 2)` and `(B, P)`, or None.
        point_clicks: The point prompts' clicks, `(N, P + 1, 2)` and `(N, P + 1)`, or None.
        masks: Previous low-resolution logits `(B + N, 1, s, s)`, or None.

    Returns:
        Sparse embeddings `(B + N, T, C)`, and dense ones: `(B + N, C, h, w)`, or
        `(1, C, 1, 1)` without ``masks``.
    """
    encoder = sam.prompt_encoder
    sparse, dense = [], []
    count = len(boxes)
    if count:
        found = encoder(box_clicks, boxes, None if masks is None else masks[:count])
        sparse.append(found[0])
        dense.append(found[1])
    if point_clicks is not None and len(point_clicks[0]):
        found = encoder(point_clicks, None, None if masks is None else masks[count:])
        sparse.append(found[0])
        dense.append(found[1])
    if masks is None:
        return torch.cat(sparse), encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
    return torch.cat(sparse), torch.cat(dense)


def decode_prompts(
    sam: Sam,
    embeddings: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's four outputs for K embedded prompts, each with its image embedding.

    Args:
        sam: The model.
        embeddings: Each prompt's image embedding, `(K, C, h, w)`.
        sparse: Sparse prompt embeddings, `(K, T, C)`.
        dense: Dense prompt embeddings, `(K, C, h, w)` or `(1, C, 1, 1)`.

    Returns:
        Low-resolution logits `(K, 4, s, s)` and the predicted IoUs `(K, 4)`.
    """
    return sam.mask_decoder.predict_masks(
        image_embeddings=embeddings.new_zeros((1, *embeddings.shape[1:])),
        image_pe=sam.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense + embeddings,
    )


def _kinds(rng: np.random.Generator, count: int, prompts: tuple[str, ...]) -> int:
    """How many of ``count`` objects (shuffled) get a box; the others get a point."""
    if prompts == ("box",):
        return count
    if prompts == ("point",):
        return 0
    return int((rng.random(count) < 0.5).sum())


def batch_loss(
    sam: Sam,
    items: list[Item],
    rng: np.random.Generator,
    prompts: tuple[str, ...],
    max_objects: int,
    corrective: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """SAM's loss over a batch of images, every prompt in one decoder call.

    As in the SAM paper, each object gets one prompt per step, a box or a point with
    equal chance (when both kinds are trained). A box (with SAM's box noise) trains the
    single-mask output; a point inside the object is ambiguous, so only the best of the
    three multi-mask outputs learns from it. With ``corrective``, a second round adds a
    click on the error of the first prediction, with its logits as ``mask_input``.
    Every output's IoU prediction learns the real IoU.

    Args:
        sam: The model.
        items: The batch's images.
        rng: The random generator of the prompts.
        prompts: Which of ``PROMPT_KINDS`` to sample.
        max_objects: At most this many objects per image.
        corrective: Also train one round of corrective clicks.

    Returns:
        The scalar loss and the mean training IoU of each prompt kind that was drawn.
    """
    embedding, soft, xyxy = _gather(items, rng, max_objects, sam.device)
    target = (soft > 0.5).float()
    scale = sam.image_encoder.img_size / soft.shape[-1]
    nb = _kinds(rng, len(soft), prompts)
    boxes = jitter_boxes(xyxy[:nb], rng, sam.image_encoder.img_size)
    pts, labels = sample_clicks(target[nb:] > 0.5, target[nb:], rng, scale)
    clicks = (pts[:, None].to(sam.device), labels[:, None].to(sam.device))
    sparse, dense = embed_prompts(sam, boxes, None, clicks)
    low, iou_pred = decode_prompts(sam, embedding, sparse, dense)
    losses, best = _mask_losses(low, soft, nb)
    total = losses.mean() + iou_loss(low, iou_pred, target)
    rows = torch.arange(len(soft))
    ious = hard_iou(low[rows, best], target)
    stats = {f"{kind}_iou": float(part.mean()) for kind, part in
             (("box", ious[:nb]), ("point", ious[nb:])) if len(part)}  # fmt: skip
    if corrective:
        previous = low[rows, best].detach()
        total = total + _corrective(sam, embedding, soft, previous, boxes, clicks, rng)
    return total, stats


def _mask_losses(
    low: torch.Tensor, soft: torch.Tensor, with_box: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each prompt's mask loss `(K,)` and the output it trains `(K,)`.

    The first ``with_box`` prompts (boxes) train output 0; the others (points) the best
    of outputs 1-3.
    """
    box = mask_loss(low[:with_box, 0], soft[:with_box])
    rest = torch.stack([mask_loss(low[with_box:, j], soft[with_box:]) for j in (1, 2, 3)], 1)
    best = torch.cat([torch.zeros(with_box, dtype=torch.int64), rest.argmin(dim=1) + 1])
    return torch.cat([box, rest.min(dim=1).values]), best


def _corrective(
    sam: Sam,
    embedding: torch.Tensor,
    soft: torch.Tensor,
    previous: torch.Tensor,
    boxes: torch.Tensor,
    clicks: Clicks,
    rng: np.random.Generator,
) -> torch.Tensor:
    """The loss of one corrective click on the error of ``previous`` logits `(K, s, s)`.

    The first ``len(boxes)`` prompts keep their box, the others their click (``clicks``).
    """
    target = (soft > 0.5).float()
    scale = sam.image_encoder.img_size / soft.shape[-1]
    fix, label = sample_clicks((previous > 0) != (target > 0.5), target, rng, scale)
    fix, label = fix[:, None].to(sam.device), label[:, None].to(sam.device)
    nb = len(boxes)
    points = (torch.cat([clicks[0], fix[nb:]], dim=1), torch.cat([clicks[1], label[nb:]], dim=1))
    sparse, dense = embed_prompts(sam, boxes, (fix[:nb], label[:nb]), points, previous[:, None])
    low, iou_pred = decode_prompts(sam, embedding, sparse, dense)
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
        k = item.count
        embedding = item.embedding[None].expand(2 * k, -1, -1, -1).to(sam.device)
        labels = torch.ones((k, 1), dtype=torch.int64, device=sam.device)
        points = (item.points[:, None].to(sam.device), labels)
        sparse, dense = embed_prompts(sam, item.boxes.to(sam.device), None, points)
        low, iou_pred = decode_prompts(sam, embedding, sparse, dense)
        best = iou_pred[k:, 1:].argmax(dim=1) + 1
        found = _full_masks(sam, torch.cat([low[:k, 0], low[k + torch.arange(k), best]]), item)
        ious = [
            float(mask_iou(f, m)) for f, m in zip(found, [*item.masks, *item.masks], strict=True)
        ]
        box_ious.extend(ious[:k])
        point_ious.extend(ious[k:])
    return {"box_miou": float(np.mean(box_ious)), "point_miou": float(np.mean(point_ious))}
