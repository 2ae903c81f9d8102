"""samkit: the helpers behind the Segment Anything tutorial notebooks.

Every public name is re-exported here, so a notebook only ever needs ``import samkit``.
"""

from __future__ import annotations

from samkit.convert import AMG_KEYS, amg_to_detections, prediction_to_detections
from samkit.env import default_device, enable_widgets, gpu_report, home_dir, in_colab
from samkit.export import (
    load_coco_rle,
    load_mask_png,
    masks_to_rle,
    rle_to_masks,
    save_coco_rle,
    save_mask_pngs,
)
from samkit.fast_amg import FastMaskGenerator
from samkit.images import check_rgb_image, encode_image, load_image
from samkit.masks import grid_shape, mask_iou, remove_duplicates, sort_by_area, stack_masks
from samkit.model import SAM_BUILDERS, build_shapes_sam, default_model_type, load_sam
from samkit.prompts import (
    BBOX_KEYS,
    bbox_to_sam_box,
    bboxes_to_xyxy,
    points_to_prompt,
    xyxy_to_bboxes,
)
from samkit.samples import (
    SAMPLE_NAMES,
    Sample,
    detections_report,
    load_boxes,
    mask_report,
    sample_image,
)
from samkit.shapes import SHAPE_KINDS, Scene, make_scene
from samkit.tutorial import (
    Timing,
    amg_settings,
    draw_labels,
    draw_points,
    output_dir,
    sam_amg_defaults,
    stopwatch,
)
from samkit.viz import NotebookFigure, annotate, mask_grid, save_figure, side_by_side
from samkit.weights import (
    CHECKPOINTS,
    ChecksumError,
    DownloadError,
    default_weights_dir,
    download_checkpoint,
)

__version__ = "0.1.0"

__all__ = [
    "AMG_KEYS",
    "BBOX_KEYS",
    "CHECKPOINTS",
    "SAMPLE_NAMES",
    "SAM_BUILDERS",
    "SHAPE_KINDS",
    "ChecksumError",
    "DownloadError",
    "FastMaskGenerator",
    "NotebookFigure",
    "Sample",
    "Scene",
    "Timing",
    "__version__",
    "amg_settings",
    "amg_to_detections",
    "annotate",
    "bbox_to_sam_box",
    "bboxes_to_xyxy",
    "build_shapes_sam",
    "check_rgb_image",
    "default_device",
    "default_model_type",
    "default_weights_dir",
    "detections_report",
    "download_checkpoint",
    "draw_labels",
    "draw_points",
    "enable_widgets",
    "encode_image",
    "gpu_report",
    "grid_shape",
    "home_dir",
    "in_colab",
    "load_boxes",
    "load_coco_rle",
    "load_image",
    "load_mask_png",
    "load_sam",
    "make_scene",
    "mask_grid",
    "mask_iou",
    "mask_report",
    "masks_to_rle",
    "output_dir",
    "points_to_prompt",
    "prediction_to_detections",
    "remove_duplicates",
    "rle_to_masks",
    "sam_amg_defaults",
    "sample_image",
    "save_coco_rle",
    "save_figure",
    "save_mask_pngs",
    "side_by_side",
    "sort_by_area",
    "stack_masks",
    "stopwatch",
    "xyxy_to_bboxes",
]
