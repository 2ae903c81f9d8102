"""``MaskGenerator``: segment-anything's automatic mask generator for any photo and device.

The same arguments, the same filters in the same order and the same records as
``SamAutomaticMaskGenerator``; what differs is where the work is done:

- **memory**: the stock generator upscales every candidate mask of a batch (64 points
  × 3 masks, float32) to the photo's size before filtering, 9 GB for a 12-megapixel
  photo. Here the masks under ``pred_iou_thresh`` are dropped before any mask is
  made, those clearly under ``stability_score_thresh`` at the decoder's resolution
  (``STABILITY_MARGIN`` below it), and the rest are upscaled, scored exactly as stock
  does, boxed and run-length encoded a chunk at a time (``samkit.amg.steps``). The
  small-region cleaning (``min_mask_region_area``) decodes one mask at a time;
- **devices**: points reach the model as float32 and labels as int32 on every device
  (the stock generator sends a float64 grid, which Apple's MPS refuses), and what is
  kept between steps lives on the CPU;
- **no mask is a result**: with crops and nothing kept, the stock generator raises
  ``IndexError`` (segment-anything issue 614); here every step takes an empty input,
  and ``generate`` returns ``[]``;
- **bad arguments** raise ``ValueError`` with a message, not ``AssertionError``;
- **progress**: a bar over the batches of points, in Spanish ("Máscaras automáticas"),
  a widget in a notebook (``tqdm.auto``); ``progress=False`` hides it.

Subclasses change the decoder only (:meth:`MaskGenerator.decode_points`):
``samkit.FastMaskGenerator`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.modeling import Sam
from segment_anything.utils.amg import (
    MaskData,
    batch_iterator,
    calculate_stability_score,
    generate_crop_boxes,
    is_box_near_crop_edge,
    uncrop_boxes_xyxy,
    uncrop_points,
)
from torchvision.ops.boxes import box_area
from tqdm.auto import tqdm

from samkit.amg.embeddings import set_image_once
from samkit.amg.steps import (
    OUTPUT_MODES,
    chunk_length,
    crop_rles,
    empty_mask_data,
    mask_boxes,
    mask_records,
    nms_keep,
    remove_small_regions_one_by_one,
    valid_low_res,
)
from samkit.checks import rgb_image

#: A mask whose stability at the decoder's low resolution is this far under
#: ``stability_score_thresh`` is not upscaled (both counts scale with the resolution;
#: the margin covers the rounding of the bilinear upscaling).
STABILITY_MARGIN = 0.05

#: The progress bar's description (a learner reads it in the notebook).
PROGRESS_DESCRIPTION = "Máscaras automáticas"

#: What :meth:`MaskGenerator.decode_points` gives: the IoU predictions ``(B, 3)`` and a
#: function from ``(point_index, mask_index)`` (both ``(M,)``) to low-resolution logits
#: ``(M, h, w)``.
Decoded = tuple[torch.Tensor, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]


def check_settings(points_per_side: Any, point_grids: Any, **settings: Any) -> None:
    """Refuse settings ``SamAutomaticMaskGenerator`` would assert on, with a message.

    Raises:
        ValueError: If not exactly one of ``points_per_side`` and ``point_grids`` is
            given, ``output_mode`` is unknown, or a count is not a whole number in range.
    """
    if (points_per_side is None) == (point_grids is None):
        raise ValueError(
            "give exactly one of points_per_side and point_grids, but got "
            f"points_per_side={points_per_side!r} and point_grids="
            f"{'None' if point_grids is None else 'a list'}"
        )
    if settings["output_mode"] not in OUTPUT_MODES:
        raise ValueError(
            f"output_mode must be one of {', '.join(OUTPUT_MODES)}, but got "
            f"{settings['output_mode']!r}"
        )
    counts = {"points_per_batch": 1, "crop_n_layers": 0, "crop_n_points_downscale_factor": 1}
    if points_per_side is not None:
        counts["points_per_side"] = 1
    values = {**settings, "points_per_side": points_per_side}
    for name, lowest in counts.items():
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lowest:
            raise ValueError(f"{name} must be a whole number from {lowest} up, but got {value!r}")


class MaskGenerator(SamAutomaticMaskGenerator):
    """``SamAutomaticMaskGenerator`` with bounded memory, float32 prompts, no crash on none.

    Args:
        model: The SAM model.
        points_per_side: Points per side of the grid (``points_per_side**2`` prompts).
        points_per_batch: Points decoded at once.
        pred_iou_thresh: Masks whose predicted IoU is not above this are dropped.
        stability_score_thresh: Masks less stable than this are dropped.
        stability_score_offset: The logit offset of the stability score.
        box_nms_thresh: Box IoU above which a mask is a duplicate within a crop.
        crop_n_layers: Layers of crops (0: the whole image only).
        crop_nms_thresh: Box IoU above which a mask is a duplicate between crops.
        crop_overlap_ratio: How much crops overlap.
        crop_n_points_downscale_factor: Grid scale-down per crop layer.
        point_grids: Explicit grids in ``[0, 1]``, one per layer, each ``(N, 2)``.
        min_mask_region_area: Holes and islands under this many pixels are removed.
        output_mode: ``"binary_mask"``, ``"uncompressed_rle"`` or ``"coco_rle"``.
        progress: Show a progress bar over the batches of points (``tqdm.auto``: a
            widget in a notebook, a line on stderr elsewhere).

    Raises:
        ValueError: If a setting is out of range (see :func:`check_settings`).

    Example:
        ```python
        generator = samkit.generator.MaskGenerator(sam, **samkit.amg_settings())
        records = generator.generate(image)  # [] when nothing passes the filters
        ```
    """

    def __init__(
        self,
        model: Sam,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.88,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        progress: bool = True,
    ) -> None:
        settings: dict[str, Any] = {
            "points_per_batch": points_per_batch,
            "pred_iou_thresh": pred_iou_thresh,
            "stability_score_thresh": stability_score_thresh,
            "stability_score_offset": stability_score_offset,
            "box_nms_thresh": box_nms_thresh,
            "crop_n_layers": crop_n_layers,
            "crop_nms_thresh": crop_nms_thresh,
            "crop_overlap_ratio": crop_overlap_ratio,
            "crop_n_points_downscale_factor": crop_n_points_downscale_factor,
            "min_mask_region_area": min_mask_region_area,
            "output_mode": output_mode,
        }
        check_settings(points_per_side, point_grids, **settings)
        super().__init__(
            model, points_per_side=points_per_side, point_grids=point_grids, **settings
        )
        self.progress = progress

    @torch.inference_mode()
    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Generate masks for a whole image.

        Args:
            image: The image, shape ``(H, W, 3)``, uint8 RGB.

        Returns:
            One record per mask, as ``SamAutomaticMaskGenerator.generate`` gives:
            ``segmentation`` (per ``output_mode``), ``area``, ``bbox`` (xywh),
            ``predicted_iou``, ``point_coords``, ``stability_score``, ``crop_box``;
            ``[]`` when no mask passes the filters.

        Raises:
            ValueError: If ``image`` is not an RGB uint8 array.
        """
        rgb_image(image)
        data = self._generate_masks(image)
        if self.min_mask_region_area > 0:
            data = self.postprocess_small_regions(
                data, self.min_mask_region_area, max(self.box_nms_thresh, self.crop_nms_thresh)
            )
        return mask_records(data, self.output_mode)

    @staticmethod
    def postprocess_small_regions(
        mask_data: MaskData, min_area: int, nms_thresh: float
    ) -> MaskData:
        """The stock step, one mask in memory at a time (``remove_small_regions_one_by_one``)."""
        return remove_small_regions_one_by_one(mask_data, min_area, nms_thresh)

    def _generate_masks(self, image: np.ndarray) -> MaskData:
        orig_size = image.shape[:2]
        crop_boxes, layer_idxs = generate_crop_boxes(
            orig_size, self.crop_n_layers, self.crop_overlap_ratio
        )
        data = empty_mask_data()
        batches = sum(-(-len(self.point_grids[i]) // self.points_per_batch) for i in layer_idxs)
        with tqdm(
            total=batches, desc=PROGRESS_DESCRIPTION, unit="lote", disable=not self.progress
        ) as bar:
            for crop_box, layer_idx in zip(crop_boxes, layer_idxs, strict=True):
                data.cat(self._process_crop(image, crop_box, layer_idx, orig_size, bar))
        if len(crop_boxes) > 1:  # duplicates between crops: the smaller crop's mask wins
            scores = 1 / box_area(data["crop_boxes"])
            data.filter(nms_keep(data["boxes"], scores, self.crop_nms_thresh))
        data.to_numpy()
        return data

    def _process_crop(
        self,
        image: np.ndarray,
        crop_box: list[int],
        crop_layer_idx: int,
        orig_size: tuple[int, ...],
        bar: Any = None,
    ) -> MaskData:
        x0, y0, x1, y1 = crop_box
        cropped = image[y0:y1, x0:x1, :]
        crop_size = cropped.shape[:2]
        set_image_once(self.predictor, cropped)
        points_for_image = self.point_grids[crop_layer_idx] * np.array(crop_size)[None, ::-1]
        data = empty_mask_data(crop_boxes=False)
        for (points,) in batch_iterator(self.points_per_batch, points_for_image):
            data.cat(self._process_batch(points, crop_size, crop_box, orig_size))
            if bar is not None:
                bar.update(1)
        self.predictor.reset_image()
        data.filter(nms_keep(data["boxes"], data["iou_preds"], self.box_nms_thresh))
        data["boxes"] = uncrop_boxes_xyxy(data["boxes"], crop_box)
        data["points"] = uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = torch.tensor(crop_box, dtype=torch.int64).repeat(len(data["rles"]), 1)
        return data

    def decode_points(self, coords: torch.Tensor) -> Decoded:
        """Decode single positive points into three candidate masks each.

        Args:
            coords: Points in the model's input frame, shape ``(B, 2)``, float32, on the
                model's device.

        Returns:
            The IoU predictions, shape ``(B, 3)``, and a function that gives the
            low-resolution logits of the chosen masks: ``(point_index, mask_index)``
            (each ``(M,)``) to ``(M, h, w)``, as ``SamPredictor.predict_torch`` computes
            them before upscaling.
        """
        model = self.predictor.model
        labels = torch.ones((coords.shape[0], 1), dtype=torch.int32, device=coords.device)
        sparse, dense = model.prompt_encoder(
            points=(coords[:, None, :], labels), boxes=None, masks=None
        )
        low_res, iou_pred = model.mask_decoder(
            image_embeddings=self.predictor.features,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
        return iou_pred, lambda point_index, mask_index: low_res[point_index, mask_index]

    def _process_batch(
        self,
        points: np.ndarray,
        im_size: tuple[int, ...],
        crop_box: list[int],
        orig_size: tuple[int, ...],
    ) -> MaskData:
        transformed = self.predictor.transform.apply_coords(points, im_size)
        coords = torch.as_tensor(transformed, dtype=torch.float32, device=self.predictor.device)
        iou_pred, low_res_of = self.decode_points(coords)
        keep = torch.ones_like(iou_pred, dtype=torch.bool)
        if self.pred_iou_thresh > 0.0:
            keep = iou_pred > self.pred_iou_thresh
        point_index, mask_index = torch.nonzero(keep, as_tuple=True)  # row-major, as stock
        low_res = low_res_of(point_index, mask_index)
        if self.stability_score_thresh > 0.0 and low_res.shape[0]:
            model = self.predictor.model
            rough = calculate_stability_score(
                valid_low_res(low_res, self.predictor.input_size, model.image_encoder.img_size),
                model.mask_threshold,
                self.stability_score_offset,
            )
            survive = rough >= self.stability_score_thresh - STABILITY_MARGIN
            low_res, point_index = low_res[survive], point_index[survive]
            mask_index = mask_index[survive]
        data = MaskData(
            iou_preds=iou_pred[point_index, mask_index].float().cpu(),
            points=torch.as_tensor(points[point_index.cpu().numpy()], dtype=torch.float64),
        )
        return self.upscale_in_chunks(low_res, data, crop_box, orig_size)

    def upscale_in_chunks(
        self, low_res: torch.Tensor, data: MaskData, crop_box: list[int], orig_size: tuple[int, ...]
    ) -> MaskData:
        """Upscale, score, box and encode the candidate masks of one batch, by chunks.

        Args:
            low_res: Their low-resolution logits, shape ``(M, h, w)``.
            data: Their ``iou_preds`` ``(M,)`` and ``points`` ``(M, 2)`` (crop pixels).
            crop_box: The crop, ``[x0, y0, x1, y1]`` in the image.
            orig_size: The image's ``(H, W)``.

        Returns:
            The masks that pass ``stability_score_thresh`` and do not touch an inner
            crop edge: ``rles``, ``boxes`` ``(K, 4)`` (crop pixels), ``iou_preds``,
            ``points``, ``stability_score``, on the CPU.
        """
        model, predictor = self.predictor.model, self.predictor
        orig_h, orig_w = int(orig_size[0]), int(orig_size[1])
        step = chunk_length(predictor.original_size, (orig_h, orig_w))
        result = empty_mask_data(crop_boxes=False)
        for start in range(0, low_res.shape[0], step):
            chunk = MaskData(**{key: value[start : start + step] for key, value in data.items()})
            logits = model.postprocess_masks(
                low_res[start : start + step, None], predictor.input_size, predictor.original_size
            )[:, 0]
            chunk["stability_score"] = calculate_stability_score(
                logits, model.mask_threshold, self.stability_score_offset
            ).cpu()
            keep = chunk["stability_score"] >= self.stability_score_thresh
            if self.stability_score_thresh <= 0.0:
                keep = torch.ones_like(keep)
            chunk.filter(keep)
            masks = (logits[keep.to(logits.device)] > model.mask_threshold).cpu()
            del logits
            chunk["boxes"] = mask_boxes(masks)
            inner = is_box_near_crop_edge(chunk["boxes"], crop_box, [0, 0, orig_w, orig_h])
            chunk.filter(~inner)
            chunk["rles"] = crop_rles(masks[~inner], crop_box, orig_size)
            del masks
            result.cat(chunk)
        return result
