"""The per-image work of ``samkit segment``, shared by its local and Ray engines.

:class:`ImageWorker` loads one model and segments one image at a time, writing that
image's result atomically; ``samkit.segment`` runs it locally, ``samkit.segment_ray``
in Ray actors, so both engines write the same files.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image

from samkit.boxes import ImageBoxes
from samkit.export import _atomic_write as _write_private
from samkit.export import masks_to_rle, save_mask_pngs

#: The value of ``"format"`` in the files under ``OUT/.samkit/``.
STORE_FORMAT = "samkit-segment-1"

#: The folder under ``--out`` that holds the per-image results and the settings.
STORE_DIR = ".samkit"

#: The file the whole run is assembled into.
ANNOTATIONS_FILE = "annotations.json"

#: The engines :func:`segment_images` runs on.
ENGINES = ("local", "ray")

#: The COCO category of automatic masks (they have no class of their own).
AMG_CATEGORY = {"id": 1, "name": "object"}

#: How many box prompts are decoded at once.
_BOX_BATCH = 16


class SegmentUsageError(ValueError):
    """The job was asked for something it cannot do (the command exits with status 2)."""


@dataclass(frozen=True)
class Failure:
    """An input that gave no result.

    Attributes:
        path: The file (or folder, or glob) as the user can find it.
        reason: Why it gave no result, for the user.
    """

    path: str
    reason: str


@dataclass
class SegmentSummary:
    """What a run of :func:`segment_images` did.

    Attributes:
        done: Images segmented by this run.
        skipped: Images already done by an earlier run with the same settings.
        failed: The inputs that gave no result, with the reason.
        annotations_file: The COCO file written (all done and skipped images).
        images: Images in ``annotations_file``.
        annotations: Masks in ``annotations_file``.
        seconds: Wall-clock time of the run.
        engine: ``"local"`` or ``"ray"``.
        no_masks: Images done (or skipped) with no mask: nothing passed the filters.
    """

    done: int = 0
    skipped: int = 0
    failed: list[Failure] = field(default_factory=list)
    annotations_file: Path | None = None
    images: int = 0
    annotations: int = 0
    seconds: float = 0.0
    engine: str = "local"
    no_masks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every input gave a result."""
        return not self.failed

    def __str__(self) -> str:
        lines = [f"done {self.done}, skipped {self.skipped}, failed {len(self.failed)}"]
        lines += [f"  failed: {failure.path}: {failure.reason}" for failure in self.failed]
        lines += [
            f"  no masks: {name} (nothing passed the filters; a blank image gives none)"
            for name in self.no_masks
        ]
        if self.annotations_file is not None:
            lines.append(
                f"{self.images} images, {self.annotations} masks -> {self.annotations_file}"
            )
        if self.done:
            lines.append(
                f"{self.done / max(self.seconds, 1e-9):.2f} images/s "
                f"({self.seconds:.1f} s, {self.engine} engine)"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class ImageItem:
    """One image of the job.

    Attributes:
        path: The file, absolute.
        file_name: Its path relative to the input it was found under (``/``-separated):
            the COCO ``file_name``, and the name of its PNG folder and preview.
        key: The name of its result file in the store (a hash of ``file_name``).
        output_stem: Where its PNGs and preview go, relative to ``masks/`` and
            ``previews/`` (``file_name`` without suffix, unless two images share that).
        boxes: Its box prompts (``--boxes``), or ``None`` for automatic masks.
    """

    path: str
    file_name: str
    key: str
    output_stem: str
    boxes: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs to segment images (picklable, for Ray actors).

    Attributes:
        out_dir: The output folder, absolute.
        model_type: The model type.
        checkpoint: A checkpoint file, or ``None`` for the default one.
        device: The device, or ``None`` for ``samkit.default_device()``.
        fast: Load the model with ``fast=True``, and segment with ``FastMaskGenerator``.
        mode: ``"amg"`` (automatic masks) or ``"boxes"``.
        amg: The generator's settings (for ``"amg"``).
        png: Write every mask as a PNG.
        preview: Write an annotated JPEG per image.
    """

    out_dir: str
    model_type: str
    checkpoint: str | None
    device: str | None
    fast: bool
    mode: str
    amg: dict[str, Any]
    png: bool
    preview: bool


def _atomic_write(path: Path, data: bytes) -> Path:
    """Write a file atomically (temporary name, then renamed), readable by all."""
    _write_private(path, data)
    os.chmod(path, 0o644)
    return path


def _key(file_name: str) -> str:
    return hashlib.sha256(file_name.encode("utf-8")).hexdigest()[:24]


def _stamp(path: str) -> dict[str, int]:
    """The size and modification time of a source file (a changed file is redone)."""
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _has_magic(text: str) -> bool:
    return glob.has_magic(text)


def _walk(folder: Path, out_dir: Path) -> list[Path]:
    """Every visible file under ``folder`` (hidden files and folders left out)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if Path(root).resolve() == out_dir:
            dirs[:] = []
            continue
        found += [Path(root) / name for name in sorted(files) if not name.startswith(".")]
    return found


def _posix(path: Path) -> str:
    return str(PurePosixPath(*path.parts))


def discover(
    inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]
) -> tuple[list[tuple[Path, str]], list[Failure]]:
    """Find the image files of the inputs, each with its relative ``file_name``.

    A file gives itself (``file_name`` its base name); a folder gives every visible file
    under it (``file_name`` relative to the folder); a glob (``photos/**/*.jpg``) gives
    the files it matches (``file_name`` relative to the glob's folder part). Files that
    are not images are found too, and fail when read: they are reported, never hidden.

    Args:
        inputs: Files, folders and globs.
        out_dir: The output folder, which must not be inside an input folder.

    Returns:
        The files found, each once, with their ``file_name``, in input order; and the
        inputs that gave nothing (an empty folder, a glob that matches nothing).

    Raises:
        SegmentUsageError: If there are no inputs, an input does not exist, the output
            folder is inside an input folder, or two files would get the same
            ``file_name``.
    """
    if isinstance(inputs, str | os.PathLike) or not isinstance(inputs, Sequence):
        raise SegmentUsageError(
            f"inputs must be a list of files, folders or globs, but got {type(inputs).__name__}"
        )
    if not inputs:
        raise SegmentUsageError("no inputs: give at least one file, folder or glob")
    out = Path(out_dir).resolve()
    found: list[tuple[Path, str]] = []
    failures: list[Failure] = []
    for given in inputs:
        if not isinstance(given, str | os.PathLike) or not str(given).strip():
            raise SegmentUsageError(f"an input must be a path or a glob, but got {given!r}")
        text = str(given)
        path = Path(text).expanduser()
        if path.is_dir():
            base = path.resolve()
            if out == base or base in out.parents:
                raise SegmentUsageError(
                    f"--out {out_dir} is inside the input folder {text}: choose an output "
                    "folder outside the inputs"
                )
            files = [(f, _posix(f.relative_to(path))) for f in _walk(path, out)]
            if not files:
                failures.append(Failure(text, "empty folder: no files found"))
            found += files
        elif path.is_file():
            found.append((path, path.name))
        elif _has_magic(text):
            prefix = text[: min(text.find(c) % (len(text) + 1) for c in "*?[")]
            root = Path(prefix) if prefix.endswith(("/", os.sep)) else Path(prefix).parent
            if root.is_dir() and (out == root.resolve() or root.resolve() in out.parents):
                raise SegmentUsageError(
                    f"--out {out_dir} is inside {root}, where the glob {text} searches: "
                    "choose an output folder outside the inputs"
                )
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            files = [
                (m, _posix(m.relative_to(root)) if m.is_relative_to(root) else m.name)
                for m in matches
                if m.is_file() and out not in m.resolve().parents
            ]
            if not files:
                failures.append(Failure(text, "the glob matches no files"))
            found += files
        else:
            raise SegmentUsageError(f"input not found: {text} (no such file or folder)")
    unique: dict[Path, tuple[Path, str]] = {}
    by_name: dict[str, Path] = {}
    for path, file_name in found:
        resolved = path.resolve()
        if resolved in unique:
            continue
        if file_name in by_name:
            raise SegmentUsageError(
                f"two inputs give the same file_name {file_name!r}: {by_name[file_name]} and "
                f"{path}; give their common parent folder instead, so that each keeps its "
                "own relative path"
            )
        unique[resolved] = (path, file_name)
        by_name[file_name] = path
    return list(unique.values()), failures


def _output_stems(file_names: Sequence[str]) -> dict[str, str]:
    """Each file's folder under ``masks/`` and preview name.

    That is its path without the suffix, or with it when two files differ only there.
    """
    stems = {name: str(PurePosixPath(name).with_suffix("")) for name in file_names}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {name: stem if counts[stem] == 1 else name for name, stem in stems.items()}


def _load_sam(spec: JobSpec) -> Any:
    import samkit

    kwargs: dict[str, Any] = {"device": spec.device}
    if spec.checkpoint is not None:
        kwargs["checkpoint"] = spec.checkpoint
    if spec.fast:
        kwargs["fast"] = True
    return samkit.load_sam(spec.model_type, **kwargs)


class ImageWorker:
    """Segments one image at a time and writes its result files; holds one model.

    Args:
        spec: The job's settings.
    """

    def __init__(self, spec: JobSpec) -> None:
        from segment_anything import SamPredictor

        from samkit.generator import MaskGenerator

        self.spec = spec
        self.out_dir = Path(spec.out_dir)
        self.store = self.out_dir / STORE_DIR / "images"
        sam = _load_sam(spec)
        generator: type[MaskGenerator] = MaskGenerator
        if spec.fast:  # the same masks, with the decoder batched and the survivors upscaled
            from samkit.fast_amg import FastMaskGenerator

            generator = FastMaskGenerator
        self.generator = generator(sam, **spec.amg) if spec.mode == "amg" else None
        self.predictor = SamPredictor(sam) if spec.mode == "boxes" else None

    def process(self, item: ImageItem) -> Failure | None:
        """Segment one image and write its files; the result record is written last.

        Args:
            item: The image.

        Returns:
            ``None`` when done, or the :class:`Failure` (the file could not be read).
        """
        import samkit

        try:
            stamp = _stamp(item.path)
            image = samkit.load_image(item.path)
        except (OSError, ValueError) as error:
            return Failure(item.path, _reason(error))
        try:  # a hard image is reported, and the run goes on with the others
            detections = self.segment(image, item)
        except Exception as error:  # any failure of one image is that image's
            return Failure(item.path, f"segmentation failed: {type(error).__name__}: {error}")
        height, width = image.shape[:2]
        record = {
            "format": STORE_FORMAT,
            "file_name": item.file_name,
            "height": int(height),
            "width": int(width),
            "source": stamp,
            "annotations": detections_to_annotations(detections),
        }
        if self.spec.png:
            folder = self.out_dir / "masks" / item.output_stem
            if folder.is_dir():
                for stale in folder.glob("mask_*.png"):
                    stale.unlink()
            if len(detections):
                save_mask_pngs(detections, folder, prefix="mask")
            else:
                folder.mkdir(parents=True, exist_ok=True)
        if self.spec.preview:
            self.write_preview(image, detections, item)
        self.store.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.store / f"{item.key}.json", json.dumps(record).encode("utf-8"))
        return None

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
        import samkit

        if self.generator is not None:  # a mask of no pixel (no threshold set) is no mask
            records = [r for r in self.generator.generate(image) if r["area"] > 0]
            return samkit.amg_to_detections(records)
        assert self.predictor is not None  # the constructor made one of the two
        boxes = ImageBoxes.from_json(item.boxes or {})
        return self._segment_boxes(image, boxes)

    def _segment_boxes(self, image: npt.NDArray[np.uint8], boxes: ImageBoxes) -> sv.Detections:
        import torch
        from segment_anything.utils.amg import calculate_stability_score

        predictor = self.predictor
        assert predictor is not None
        height, width = image.shape[:2]
        xyxy = boxes.to_pixels(height, width)
        masks = np.zeros((len(xyxy), height, width), dtype=bool)
        ious = np.zeros(len(xyxy), dtype=np.float32)
        stability = np.zeros(len(xyxy), dtype=np.float32)
        if len(xyxy):
            predictor.set_image(image)
            threshold = predictor.model.mask_threshold
            for start in range(0, len(xyxy), _BOX_BATCH):
                chunk = torch.as_tensor(xyxy[start : start + _BOX_BATCH], device=predictor.device)
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

    def write_preview(
        self, image: npt.NDArray[np.uint8], detections: sv.Detections, item: ImageItem
    ) -> None:
        """Write ``previews/<output_stem>.jpg``: the image with its masks drawn."""
        import samkit

        target = self.out_dir / "previews" / f"{item.output_stem}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        drawn = samkit.annotate(image, detections) if len(detections) else image
        buffer = io.BytesIO()
        Image.fromarray(drawn).save(buffer, format="JPEG", quality=90)
        _atomic_write(target, buffer.getvalue())


def images_without_masks(store: Path, items: Sequence[ImageItem]) -> list[str]:
    """The ``file_name`` of every image whose stored result holds no mask.

    Args:
        store: The folder of per-image results (``OUT/.samkit/images``).
        items: The images of the run; those without a stored result are left out.

    Returns:
        Their names, sorted.
    """
    names = []
    for item in items:
        try:
            record = json.loads((store / f"{item.key}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("file_name") == item.file_name:
            if not record.get("annotations"):
                names.append(item.file_name)
    return sorted(names)


def _reason(error: BaseException) -> str:
    text = str(error)
    return text if text else type(error).__name__


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
    annotations = []
    rles = masks_to_rle(masks)
    data = detections.data
    for i, (rle, mask) in enumerate(zip(rles, masks, strict=True)):
        area = int(mask.sum())
        if area:
            ys = np.flatnonzero(mask.any(axis=1))
            xs = np.flatnonzero(mask.any(axis=0))
            bbox = [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]
        else:
            bbox = [0, 0, 0, 0]
        annotation: dict[str, Any] = {
            "segmentation": rle,
            "area": area,
            "bbox": bbox,
            "iscrowd": 0,
            "category_id": int(data["category_id"][i])
            if "category_id" in data
            else AMG_CATEGORY["id"],
            "predicted_iou": float(data["predicted_iou"][i]),
            "stability_score": float(data["stability_score"][i]),
        }
        if "point_coords" in data:
            annotation["point_coords"] = np.asarray(data["point_coords"][i]).tolist()
        if "crop_box" in data:
            annotation["crop_box"] = np.asarray(data["crop_box"][i]).tolist()
        if "prompt_box" in data:
            x0, y0, x1, y1 = (float(v) for v in data["prompt_box"][i])
            annotation["prompt_box"] = [x0, y0, x1 - x0, y1 - y0]
        if "score" in data:
            annotation["score"] = float(data["score"][i])
        annotations.append(annotation)
    return annotations
