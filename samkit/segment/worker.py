"""The per-image work of ``samkit segment``, shared by its local and Ray engines.

:class:`ImageWorker` loads one model and segments one image at a time (automatic masks,
or box prompts), writing that image's files: its mask PNGs and preview when asked for,
its YOLO label file and cut-outs in those formats, and last its result record in the
store. The local engine (:mod:`samkit.segment.job`)
runs one in this process, the Ray engine (:mod:`samkit.segment.ray`) one per actor, so
both engines write the same files.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image
from segment_anything import SamPredictor

from samkit.boxes import ImageBoxes
from samkit.convert import amg_to_detections
from samkit.export import masks_to_rle, save_mask_pngs
from samkit.fast.amg import FastMaskGenerator
from samkit.files import atomic_write
from samkit.generator import MaskGenerator
from samkit.images import load_image
from samkit.model import load_sam
from samkit.segment.outputs import earlier_files, format_files, remove_stale, write_formats
from samkit.segment.owned import begin_files, end_files
from samkit.segment.source import source_stamp
from samkit.segment.spec import AMG_CATEGORY, STORE_FORMAT, Failure, ImageItem, JobSpec
from samkit.segment.store import write_record
from samkit.viz import annotate

#: How many box prompts are decoded at once.
BOX_BATCH = 16


def load_model(spec: JobSpec) -> Any:
    """The job's SAM, loaded with ``samkit.model.load_sam`` (``fast=True`` when asked)."""
    kwargs: dict[str, Any] = {"device": spec.device}
    if spec.checkpoint is not None:
        kwargs["checkpoint"] = spec.checkpoint
    if spec.fast:
        kwargs["fast"] = True
    return load_sam(spec.model_type, **kwargs)


def failure_reason(error: BaseException) -> str:
    """An error's message for the user, or its type's name when it has none.

    A reading error (``OSError``, ``ValueError``) is told as it is; any other error
    (a failure inside the model) is told with its type, so that it can be looked up.
    """
    if isinstance(error, MemoryError):
        return (
            "out of memory while segmenting it (MemoryError): the image is too large for "
            "this machine at these settings; try a smaller --points-per-batch or a smaller "
            "copy of the image"
        )
    text = str(error)
    if not text:
        return type(error).__name__
    return text if isinstance(error, OSError | ValueError) else f"{type(error).__name__}: {text}"


def check_size(height: int, width: int, input_size: int) -> None:
    """Refuse an image too thin for SAM, which resizes its longest side to ``input_size``.

    Raises:
        ValueError: If the shorter side would shrink to 0 pixels.
    """
    short = int(min(height, width) * input_size / max(height, width) + 0.5)
    if short < 1:
        raise ValueError(
            f"the image is {height}x{width} pixels (height x width), too thin to segment: "
            f"SAM resizes its longest side to {input_size} pixels, which makes the other "
            f"0; it must be at least 1 pixel for every {2 * input_size} of the longest side"
        )


class ImageWorker:
    """Segments one image at a time and writes its result files; holds one model.

    Args:
        spec: The job's settings.
    """

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.out_dir = Path(spec.out_dir)
        self.generator: Any = None
        self.predictor: Any = None  # SamPredictor, or samkit.hf's Sam2Predictor
        self.input_size = 1024  # the side SAM 2.1 and SAM 3 resize to (about); SAM's own below
        if spec.mode == "text":  # SAM 3 (samkit.hf); a checkpoint is a save_pretrained folder
            from samkit.hf.load import load_hf

            self.text_model = load_hf("sam3", weights=spec.checkpoint, device=spec.device)
            return
        if spec.model_type.startswith("sam2"):  # SAM 2.1 (samkit.hf): box prompts
            from samkit.hf.sam2 import load_predictor

            self.predictor = load_predictor(
                spec.model_type, weights=spec.checkpoint, device=spec.device
            )
            return
        sam = load_model(spec)
        generator: type[MaskGenerator] = MaskGenerator
        if spec.fast:  # the same masks, with the decoder batched and the survivors upscaled
            generator = FastMaskGenerator
        # the run has its own bar over the images
        self.generator = generator(sam, **spec.amg, progress=False) if spec.mode == "amg" else None
        self.predictor = SamPredictor(sam) if spec.mode == "boxes" else None
        self.input_size = int(sam.image_encoder.img_size)

    def process(self, item: ImageItem) -> Failure | None:
        """Segment one image and write its files; the result record is written last.

        Every failure of this one image (a file that is not a regular file or not an
        image, an image too thin to segment, running out of memory, an error inside the
        model) becomes its :class:`Failure`, and the run goes on. Errors writing into the
        output folder (a full disk) are not the image's: they stop the run.

        Args:
            item: The image.

        Returns:
            ``None`` when done, or the :class:`Failure` with the path and the reason.
        """
        try:
            stamp = source_stamp(item.path)
            image = load_image(item.path)
            height, width = image.shape[:2]
            check_size(height, width, self.input_size)
            detections = self.segment(image, item)
            annotations = detections_to_annotations(detections)
        except Exception as error:  # one image's failure never stops a run
            return Failure(item.path, failure_reason(error))
        files = self.files_of(item, len(annotations))
        before = earlier_files(self.out_dir, item.key)
        record = {
            "format": STORE_FORMAT,
            "file_name": item.file_name,
            "height": int(height),
            "width": int(width),
            "source": stamp,
            "annotations": annotations,
            "formats": list(self.spec.formats),
            "files": files,
        }
        begin_files(self.out_dir, item.key, {*files, *before})
        if self.spec.png:
            self.write_pngs(detections, item)
        if self.spec.preview:
            self.write_preview(image, detections, item)
        spec = self.spec
        write_formats(self.out_dir, spec.formats, spec.classes, image, detections, item)
        write_record(self.out_dir, item, record)
        remove_stale(self.out_dir, before, files)  # still in the journal until it is gone
        end_files(self.out_dir, item.key)
        return None

    def files_of(self, item: ImageItem, masks: int) -> list[str]:
        """The files (and the mask folder, ending in ``/``) an image's result writes."""
        files = []
        if self.spec.png:
            folder = f"masks/{item.output_stem}/"
            files += [folder, *(f"{folder}mask_{i:03d}.png" for i in range(masks))]
        if self.spec.preview:
            files.append(f"previews/{item.output_stem}.jpg")
        return files + format_files(self.spec.formats, item, masks)

    def segment(self, image: npt.NDArray[np.uint8], item: ImageItem) -> sv.Detections:
        """The masks of one image, largest first.

        Args:
            image: RGB uint8 `(H, W, 3)`.
            item: The image (its boxes, when prompting with boxes).

        Returns:
            ``sv.Detections`` with masks `(N, H, W)` and ``data`` ``predicted_iou`` and
            ``stability_score`` (and for automatic masks ``point_coords``, ``crop_box``;
            for boxes ``category_id``, ``prompt_box`` and ``score``).
        """
        if self.spec.mode == "text":
            from samkit.hf.sam3 import segment_text

            texts, threshold = list(self.spec.texts), self.spec.text_threshold
            found = segment_text(self.text_model, image, texts, threshold=threshold)
            found.data["category_id"] = np.asarray(found.class_id, dtype=int) + 1
            found.data["score"] = np.asarray(found.confidence, dtype=np.float32)
            return found
        if self.generator is not None:  # a mask of no pixel (no threshold set) is no mask
            records = [r for r in self.generator.generate(image) if r["area"] > 0]
            return amg_to_detections(records)
        boxes = ImageBoxes.from_json(item.boxes or {})
        return self.segment_boxes(image, boxes)

    def segment_boxes(self, image: npt.NDArray[np.uint8], boxes: ImageBoxes) -> sv.Detections:
        """The mask of each box prompt, one mask per box, in the boxes' order.

        Args:
            image: RGB uint8 `(H, W, 3)`.
            boxes: The image's boxes.

        Returns:
            ``sv.Detections`` with masks `(N, H, W)`, ``confidence`` the predicted IoU,
            and ``data`` ``predicted_iou``, ``stability_score``, ``category_id``,
            ``prompt_box`` `(N, 4)` xyxy pixels, and ``score`` when the boxes have one.
        """
        height, width = image.shape[:2]
        xyxy = boxes.to_pixels(height, width)
        masks, ious, stability = self.decode_boxes(image, xyxy)
        data: dict[str, Any] = {
            "predicted_iou": ious,
            "stability_score": stability,
            "category_id": boxes.category_id,
            "prompt_box": xyxy,
        }
        if boxes.score is not None:
            data["score"] = boxes.score
        return sv.Detections(
            xyxy=sv.mask_to_xyxy(masks).astype(np.float32).reshape(-1, 4),
            mask=masks,
            confidence=ious,
            data=data,
        )

    def decode_boxes(
        self, image: npt.NDArray[np.uint8], xyxy: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Decode box prompts in batches of :data:`BOX_BATCH` with ``SamPredictor``.

        Args:
            image: RGB uint8 `(H, W, 3)`.
            xyxy: The boxes in pixels, `(N, 4)`.

        Returns:
            The masks `(N, H, W)` bool, their predicted IoU `(N,)` and stability score
            `(N,)` (stock ``calculate_stability_score`` at offset 1.0).
        """
        import torch
        from segment_anything.utils.amg import calculate_stability_score

        predictor = self.predictor
        if predictor is None:
            raise RuntimeError("this worker segments automatic masks; it has no predictor")
        height, width = image.shape[:2]
        masks = np.zeros((len(xyxy), height, width), dtype=bool)
        ious = np.zeros(len(xyxy), dtype=np.float32)
        stability = np.zeros(len(xyxy), dtype=np.float32)
        if not len(xyxy):
            return masks, ious, stability
        predictor.set_image(image)
        if not hasattr(predictor, "predict_torch"):  # SAM 2.1: one box at a time
            for index, box in enumerate(xyxy):
                logits, iou, _ = predictor.predict(
                    box=box, multimask_output=False, return_logits=True
                )
                masks[index] = logits[0] > 0.0
                ious[index] = iou[0]
                stability[index] = float(
                    calculate_stability_score(torch.from_numpy(logits[0]), 0.0, 1.0)
                )
            predictor.reset_image()
            return masks, ious, stability
        threshold = predictor.model.mask_threshold
        for start in range(0, len(xyxy), BOX_BATCH):
            chunk = torch.as_tensor(xyxy[start : start + BOX_BATCH], device=predictor.device)
            logits, iou, _ = predictor.predict_torch(
                None,
                None,
                boxes=predictor.transform.apply_boxes_torch(chunk, (height, width)),
                multimask_output=False,
                return_logits=True,
            )
            end = start + len(chunk)
            masks[start:end] = (logits[:, 0] > threshold).cpu().numpy()
            ious[start:end] = iou[:, 0].float().cpu().numpy()
            stability[start:end] = (
                calculate_stability_score(logits[:, 0], threshold, 1.0).float().cpu().numpy()
            )
        predictor.reset_image()
        return masks, ious, stability

    def write_pngs(self, detections: sv.Detections, item: ImageItem) -> None:
        """Write ``masks/<output_stem>/mask_NNN.png``, replacing an earlier set as a whole.

        Only the ``mask_NNN.png`` set is replaced (none for no masks); nothing else there.
        """
        folder = self.out_dir / "masks" / item.output_stem
        masks = detections.mask if detections.mask is not None else np.zeros((0, 1, 1))
        save_mask_pngs(np.asarray(masks, dtype=bool), folder, prefix="mask")

    def write_preview(
        self, image: npt.NDArray[np.uint8], detections: sv.Detections, item: ImageItem
    ) -> None:
        """Write ``previews/<output_stem>.jpg``: the image with its masks drawn."""
        target = self.out_dir / "previews" / f"{item.output_stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        drawn = annotate(image, detections) if len(detections) else image
        buffer = io.BytesIO()
        Image.fromarray(drawn).save(buffer, format="JPEG", quality=90)
        atomic_write(target, buffer.getvalue())


def detections_to_annotations(detections: sv.Detections) -> list[dict[str, Any]]:
    """COCO annotations (without ids) of one image's masks.

    Args:
        detections: ``sv.Detections`` with masks `(N, H, W)`, as
            :meth:`ImageWorker.segment` gives.

    Returns:
        N dicts with ``segmentation`` (COCO RLE), ``area``, ``bbox`` ``[x, y, w, h]``,
        ``iscrowd``, ``category_id``, ``predicted_iou``, ``stability_score``, and
        ``point_coords``/``crop_box`` (automatic masks) or ``prompt_box``/``score`` (boxes).
    """
    if detections.mask is None or not len(detections):
        return []
    masks = np.asarray(detections.mask, dtype=bool)
    rles = masks_to_rle(masks)
    return [
        mask_annotation(rle, mask, detections.data, i)
        for i, (rle, mask) in enumerate(zip(rles, masks, strict=True))
    ]


def mask_bbox(mask: npt.NDArray[np.bool_]) -> list[int]:
    """The COCO ``bbox`` ``[x, y, w, h]`` of a mask `(H, W)` (``[0, 0, 0, 0]`` when empty)."""
    if not mask.any():
        return [0, 0, 0, 0]
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    return [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]


def mask_annotation(
    rle: dict[str, Any], mask: npt.NDArray[np.bool_], data: dict[str, Any], i: int
) -> dict[str, Any]:
    """The COCO annotation (without ids) of mask ``i``, with what ``data`` holds for it.

    Args:
        rle: The mask as COCO RLE.
        mask: The mask, bool `(H, W)`.
        data: The detections' ``data`` (per-mask arrays, first axis N).
        i: Which mask.

    Returns:
        A dict as :func:`detections_to_annotations` describes.
    """
    annotation: dict[str, Any] = {
        "segmentation": rle,
        "area": int(mask.sum()),
        "bbox": mask_bbox(mask),
        "iscrowd": 0,
        "category_id": int(data["category_id"][i]) if "category_id" in data else AMG_CATEGORY["id"],
    }
    for key in ("predicted_iou", "stability_score"):  # SAM's own scores (not SAM 3's)
        if key in data:
            annotation[key] = finite_or_none(data[key][i])
    if "point_coords" in data:
        annotation["point_coords"] = np.asarray(data["point_coords"][i]).tolist()
    if "crop_box" in data:
        annotation["crop_box"] = np.asarray(data["crop_box"][i]).tolist()
    if "prompt_box" in data:
        x0, y0, x1, y1 = (float(v) for v in data["prompt_box"][i])
        annotation["prompt_box"] = [x0, y0, x1 - x0, y1 - y0]
    if "score" in data:
        annotation["score"] = finite_or_none(data["score"][i])
    return annotation


def finite_or_none(value: Any) -> float | None:
    """A score as a float, or ``None`` (JSON ``null``) when it is NaN or infinite."""
    number = float(value)
    return number if math.isfinite(number) else None
