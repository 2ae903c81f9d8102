"""samkit: the helpers behind the Segment Anything tutorial notebooks.

What the notebooks and a user call is re-exported here (``__all__``), so a notebook only
ever needs ``import samkit``; everything else is importable from its module:

- ``samkit.model``: loading SAM; ``samkit.registry``: the model types;
  ``samkit.checkpoint``: reading a checkpoint file safely;
- ``samkit.weights``, ``samkit.download``: verified, resumable checkpoint downloads;
- ``samkit.files``: atomic writes, sha256, what a file really is; ``samkit.locks``: one
  process at a time (downloads, conversions), the others wait;
- ``samkit.checks``: the checks of user input (numbers, ranges, images, paths);
- ``samkit.env``: Colab, the device, the environment variables; ``samkit.drive``: the
  weights on Google Drive in Colab;
- ``samkit.cpu_isa``: the instruction-set caps of ``SAMKIT_MAX_CPU_ISA``;
- ``samkit.locations``: where the bundled data, weights and outputs are;
- ``samkit.settings``: the automatic mask generator's settings per model;
- ``samkit.generator``: segment-anything's automatic mask generator, with crops that
  find no mask fixed (``samkit.amg``: its steps, and the embeddings it remembers);
- ``samkit.fast``: the fast path: the image encoder on OpenVINO or CUDA autocast
  (``fast.attention``, ``fast.cpu``, ``fast.cache``, ``fast.trial``, ``fast.openvino``,
  ``fast.encoder``), ``FastMaskGenerator`` (``fast.amg``), the prompt decoder exported to
  ONNX (``fast.onnx``);
- ``samkit.prompts``, ``samkit.convert``: widget boxes, clicks, SAM's outputs as
  ``sv.Detections``;
- ``samkit.masks``, ``samkit.scoring``: mask operations, and how good a mask is;
- ``samkit.export``, ``samkit.rle``: masks to and from COCO RLE and PNG files;
- ``samkit.formats``: masks as polygons, YOLO segmentation labels and PNG cut-outs;
- ``samkit.boxes``, ``samkit.box_records``, ``samkit.yolo``: detectors' box files;
- ``samkit.images``, ``samkit.viz``, ``samkit.timing``: images, drawing, timing;
- ``samkit.samples``, ``samkit.shapes``: the example images and the generated scenes;
- ``samkit.evaluation``: measuring a model on held-out scenes;
- ``samkit.segment``: ``samkit segment``, many images into one COCO file, resumable,
  local or on Ray (``spec``, ``discovery``, ``store``, ``worker``, ``job``, ``ray``);
  ``samkit.boxes``: the box files it prompts with;
- ``samkit.live``: the widget that segments as you draw (``live.widget``), its prompt
  checks (``live.prompt``), decoder runs (``live.decoder``), embedding memo
  (``live.embedding``), overlay PNG (``live.overlay``) and Spanish words (``live.texts``);
- ``samkit.hf``: SAM 2.1 (``SamPredictor``'s interface) and SAM 3 (text prompts) through
  Hugging Face transformers (``hf.load``, ``hf.sam2``, ``hf.sam3``, ``hf.configs``);
- ``samkit.rings``: generated scenes of rings, frames and crescents (objects with holes);
- ``samkit.finetune``: fine-tuning SAM's mask decoder on your own COCO data set;
- ``samkit.cli``: the ``samkit`` command; ``samkit.version``: the version.
"""

from __future__ import annotations

# env first: it passes SAMKIT_MAX_CPU_ISA on to torch and OpenVINO before they load
from samkit import env as env  # isort: skip
from samkit import drive as drive
from samkit import finetune as finetune
from samkit import generator as generator
from samkit import hf as hf
from samkit import notes as notes
from samkit import rings as rings
from samkit.convert import amg_to_detections, prediction_to_detections
from samkit.env import enable_widgets, gpu_report, in_colab
from samkit.export import load_coco_rle, save_coco_rle, save_mask_pngs
from samkit.fast.amg import FastMaskGenerator
from samkit.images import encode_image, load_image
from samkit.live import LiveSegmenter
from samkit.locations import home_dir, output_dir
from samkit.masks import remove_duplicates
from samkit.model import default_model_type, download_checkpoint, load_sam
from samkit.prompts import bboxes_to_xyxy, points_to_prompt, xyxy_to_bboxes
from samkit.samples import load_boxes, sample_image
from samkit.scoring import mask_report
from samkit.segment.job import segment_images
from samkit.settings import amg_settings
from samkit.timing import stopwatch
from samkit.version import __version__ as __version__
from samkit.viz import annotate, mask_grid, side_by_side

__all__ = [
    "FastMaskGenerator",
    "LiveSegmenter",
    "amg_settings",
    "amg_to_detections",
    "annotate",
    "bboxes_to_xyxy",
    "default_model_type",
    "download_checkpoint",
    "enable_widgets",
    "encode_image",
    "gpu_report",
    "home_dir",
    "in_colab",
    "load_boxes",
    "load_coco_rle",
    "load_image",
    "load_sam",
    "mask_grid",
    "mask_report",
    "output_dir",
    "points_to_prompt",
    "prediction_to_detections",
    "remove_duplicates",
    "sample_image",
    "save_coco_rle",
    "save_mask_pngs",
    "segment_images",
    "side_by_side",
    "stopwatch",
    "xyxy_to_bboxes",
]
