"""The steps of the automatic mask generator that work on masks, with bounded memory.

Every function here keeps at most one chunk of full-size masks alive: the candidate
masks of a batch of points stay at the decoder's low resolution until they pass the
filters that can be computed there, and the survivors are upscaled, scored, boxed and
run-length encoded a chunk at a time (:func:`chunk_length`). What a run keeps is the
records' RLEs, never a stack of full-size masks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from segment_anything.utils.amg import (
    MaskData,
    area_from_rle,
    batched_mask_to_box,
    box_xyxy_to_xywh,
    coco_encode_rle,
    mask_to_rle_pytorch,
    remove_small_regions,
    rle_to_mask,
    uncrop_masks,
)
from torchvision.ops.boxes import batched_nms

#: The values of ``output_mode`` (as segment-anything's generator).
OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")

#: The bytes one chunk of full-size masks may take while it is scored and encoded.
CHUNK_BYTES = 256 * 1024**2


def empty_mask_data(crop_boxes: bool = True) -> MaskData:
    """A ``MaskData`` with every key of a generator's result and no mask.

    Args:
        crop_boxes: Include the ``crop_boxes`` key (a crop's result sets it last).

    Returns:
        ``rles`` ``[]``, ``boxes`` int64 `(0, 4)`, ``iou_preds`` and ``stability_score``
        float32 `(0,)`, ``points`` float64 `(0, 2)`, and ``crop_boxes`` int64 `(0, 4)`:
        the shapes that ``MaskData.cat`` and the NMS steps accept with nothing in them.
    """
    data = MaskData(
        rles=[],
        boxes=torch.zeros((0, 4), dtype=torch.int64),
        iou_preds=torch.zeros((0,), dtype=torch.float32),
        points=torch.zeros((0, 2), dtype=torch.float64),
        stability_score=torch.zeros((0,), dtype=torch.float32),
    )
    if crop_boxes:
        data["crop_boxes"] = torch.zeros((0, 4), dtype=torch.int64)
    return data


def chunk_length(crop_size: tuple[int, int], image_size: tuple[int, int]) -> int:
    """How many masks of a crop are upscaled and encoded at once.

    Per mask a chunk holds its float32 logits at the crop's size, and about three
    bytes per pixel of the image (the boolean mask placed in the image, its
    column-major copy and the run boundaries).

    Args:
        crop_size: The crop's ``(H, W)``.
        image_size: The image's ``(H, W)``.

    Returns:
        At least 1; as many masks as fit in :data:`CHUNK_BYTES`.
    """
    per_mask = 4 * crop_size[0] * crop_size[1] + 3 * image_size[0] * image_size[1]
    return max(1, CHUNK_BYTES // per_mask)


def valid_low_res(
    low_res: torch.Tensor, input_size: tuple[int, int], img_size: int
) -> torch.Tensor:
    """The part of low-resolution logits that covers the image, not the padding.

    Args:
        low_res: Logits, shape ``(M, h, w)`` for the padded ``img_size`` square input.
        input_size: The resized image's ``(H, W)`` inside that square.
        img_size: The side of the model's square input (1024 for SAM).

    Returns:
        A view of shape ``(M, ceil(H * h / img_size), ceil(W * w / img_size))``.
    """
    rows = math.ceil(input_size[0] * low_res.shape[-2] / img_size)
    cols = math.ceil(input_size[1] * low_res.shape[-1] / img_size)
    return low_res[:, :rows, :cols]


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Boxes around boolean masks, ``[x0, y0, x1, y1]`` (inclusive), int64.

    Args:
        masks: Shape ``(M, H, W)``, bool.

    Returns:
        Shape ``(M, 4)``, int64; ``[0, 0, 0, 0]`` for an empty mask; `(0, 4)` for none.
        The same boxes as segment-anything's ``batched_mask_to_box``.
    """
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.int64, device=masks.device)
    boxes: torch.Tensor = batched_mask_to_box(masks)
    return boxes


def crop_rles(
    masks: torch.Tensor, crop_box: list[int], orig_size: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Uncompressed RLEs in the image of masks computed in a crop, a few at a time.

    Args:
        masks: Boolean masks of the crop, shape ``(M, h, w)``, on the CPU.
        crop_box: The crop, ``[x0, y0, x1, y1]`` in the image.
        orig_size: The image's ``(H, W)``.

    Returns:
        M RLEs ``{"size": [H, W], "counts": [...]}`` (column-major, as COCO).
    """
    height, width = int(orig_size[0]), int(orig_size[1])
    step = max(1, CHUNK_BYTES // (3 * height * width))
    rles: list[dict[str, Any]] = []
    for start in range(0, masks.shape[0], step):
        placed = uncrop_masks(masks[start : start + step], crop_box, height, width)
        rles += mask_to_rle_pytorch(placed)
    return rles


def nms_keep(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices kept by box NMS in one category (an empty index for no box).

    Args:
        boxes: Shape ``(N, 4)``, xyxy.
        scores: Shape ``(N,)``; higher is kept first.
        iou_threshold: Boxes overlapping a kept one by more than this are dropped.

    Returns:
        Shape ``(K,)``, int64, best first.
    """
    if boxes.shape[0] == 0:
        return torch.zeros((0,), dtype=torch.int64)
    keep: torch.Tensor = batched_nms(
        boxes.float().cpu(),
        scores.float().cpu(),
        torch.zeros(boxes.shape[0], dtype=torch.int64),
        iou_threshold=iou_threshold,
    )
    return keep


def remove_small_regions_one_by_one(data: MaskData, min_area: int, nms_thresh: float) -> MaskData:
    """segment-anything's ``postprocess_small_regions``, one mask in memory at a time.

    Removes holes and islands under ``min_area`` pixels from every mask, then drops the
    new duplicates by box NMS, preferring masks that needed no change: the same result
    as the stock step, which decodes every mask at once.

    Args:
        data: A generator's result with ``rles`` and ``boxes`` (numpy, ``(N, 4)``).
        min_area: Regions smaller than this many pixels are removed.
        nms_thresh: The box IoU above which a mask is a duplicate.

    Returns:
        ``data``, edited in place: the kept masks with their new RLEs and boxes.
    """
    if len(data["rles"]) == 0:
        return data
    boxes, scores, changed_rles = [], [], {}
    for index, rle in enumerate(data["rles"]):
        mask, holes = remove_small_regions(rle_to_mask(rle), min_area, mode="holes")
        mask, islands = remove_small_regions(mask, min_area, mode="islands")
        tensor = torch.as_tensor(np.ascontiguousarray(mask))[None]
        boxes.append(mask_boxes(tensor)[0])
        scores.append(0.0 if holes or islands else 1.0)
        if holes or islands:
            changed_rles[index] = mask_to_rle_pytorch(tensor)[0]
    box_tensor = torch.stack(boxes)
    keep = nms_keep(box_tensor, torch.as_tensor(scores), nms_thresh)
    for index in keep.tolist():
        if index in changed_rles:
            data["rles"][index] = changed_rles[index]
            data["boxes"][index] = box_tensor[index].numpy()
    data.filter(keep)
    return data


def mask_records(data: MaskData, output_mode: str) -> list[dict[str, Any]]:
    """The generator's records, as ``SamAutomaticMaskGenerator.generate`` writes them.

    Args:
        data: The result, numpy: ``rles``, ``boxes`` ``(N, 4)``, ``iou_preds``,
            ``points`` ``(N, 2)``, ``stability_score``, ``crop_boxes`` ``(N, 4)``.
        output_mode: One of :data:`OUTPUT_MODES`: ``segmentation`` as a bool array
            ``(H, W)``, the uncompressed RLE, or the COCO (compressed) RLE.

    Returns:
        N dicts with ``segmentation``, ``area``, ``bbox`` (xywh), ``predicted_iou``,
        ``point_coords``, ``stability_score``, ``crop_box`` (xywh).
    """
    records = []
    for index, rle in enumerate(data["rles"]):
        if output_mode == "coco_rle":
            segmentation: Any = coco_encode_rle(rle)
        elif output_mode == "binary_mask":
            segmentation = rle_to_mask(rle)
        else:
            segmentation = rle
        records.append(
            {
                "segmentation": segmentation,
                "area": area_from_rle(rle),
                "bbox": box_xyxy_to_xywh(data["boxes"][index]).tolist(),
                "predicted_iou": data["iou_preds"][index].item(),
                "point_coords": [data["points"][index].tolist()],
                "stability_score": data["stability_score"][index].item(),
                "crop_box": box_xyxy_to_xywh(data["crop_boxes"][index]).tolist(),
            }
        )
    return records
