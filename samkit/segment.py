"""Segment many images into one COCO file: the job behind ``samkit segment``.

The job finds the images of its inputs (files, folders searched recursively, globs),
segments each one (automatic masks, or box prompts from a detector's box file), and
writes one COCO ``annotations.json`` for all of them. It can be trusted with a long run:

- every image's result is written on its own, atomically, into ``OUT/.samkit/images/``
  as soon as it is done; ``annotations.json`` is assembled from those at the end. A run
  that is killed loses at most the images in flight, and the same command run again
  skips what is done;
- ``OUT/.samkit/settings.json`` records the settings the results were made with; a run
  with other settings is refused (``overwrite=True`` starts afresh instead), so results
  of two settings are never mixed. The device, the engine and ``fast`` are not part of
  it: a run started on a laptop may be finished on a cluster;
- a file that cannot be read is reported with its path and the reason, and the run goes
  on.

The per-image work (:class:`ImageWorker`) is the same for the local engine and for the
Ray engine (:mod:`samkit.segment_ray`), so both write the same files.

Example:
    ```python
    summary = samkit.segment_images(["photos/"], "out/", points_per_side=16)
    print(summary)
    ```
"""

from __future__ import annotations

import glob
import hashlib
import inspect
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image

from samkit.boxes import BoxFile, ImageBoxes, read_box_file
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
    """

    done: int = 0
    skipped: int = 0
    failed: list[Failure] = field(default_factory=list)
    annotations_file: Path | None = None
    images: int = 0
    annotations: int = 0
    seconds: float = 0.0
    engine: str = "local"

    @property
    def ok(self) -> bool:
        """Whether every input gave a result."""
        return not self.failed

    def __str__(self) -> str:
        lines = [f"done {self.done}, skipped {self.skipped}, failed {len(self.failed)}"]
        lines += [f"  failed: {failure.path}: {failure.reason}" for failure in self.failed]
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
        fast: Load the model with ``fast=True``.
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


def load_sam_accepts_fast() -> bool:
    """Whether this samkit's ``load_sam`` takes ``fast=`` (the fast CPU backend)."""
    import samkit

    return "fast" in inspect.signature(samkit.load_sam).parameters


class ImageWorker:
    """Segments one image at a time and writes its result files; holds one model.

    Args:
        spec: The job's settings.
    """

    def __init__(self, spec: JobSpec) -> None:
        from segment_anything import SamAutomaticMaskGenerator, SamPredictor

        self.spec = spec
        self.out_dir = Path(spec.out_dir)
        self.store = self.out_dir / STORE_DIR / "images"
        sam = _load_sam(spec)
        self.generator = SamAutomaticMaskGenerator(sam, **spec.amg) if spec.mode == "amg" else None
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
        detections = self.segment(image, item)
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

        if self.generator is not None:
            return samkit.amg_to_detections(self.generator.generate(image))
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


def _fingerprint(spec: JobSpec, box_file: BoxFile | None) -> dict[str, Any]:
    """The settings the results depend on (not the device, the engine or ``fast``)."""
    checkpoint = None
    if spec.checkpoint is not None:
        path = Path(spec.checkpoint).resolve()
        checkpoint = {"path": str(path), "size": path.stat().st_size}
    return {
        "format": STORE_FORMAT,
        "model_type": spec.model_type,
        "checkpoint": checkpoint,
        "mode": spec.mode,
        "amg": spec.amg if spec.mode == "amg" else None,
        "boxes": (
            None
            if box_file is None
            else {"kind": box_file.kind, "source": str(box_file.source), "sha256": box_file.sha256}
        ),
        "png": spec.png,
        "preview": spec.preview,
    }


def _open_store(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> None:
    """Create the store, or check that it holds results of the same settings."""
    store = out / STORE_DIR
    settings_file = store / "settings.json"
    if overwrite:
        for name in (STORE_DIR, "masks", "previews"):
            if (out / name).is_dir():
                shutil.rmtree(out / name)
        (out / ANNOTATIONS_FILE).unlink(missing_ok=True)
    elif settings_file.is_file():
        try:
            previous = json.loads(settings_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            previous = {}
        if previous != json.loads(json.dumps(fingerprint)):
            changed = _changes(previous, json.loads(json.dumps(fingerprint)))
            raise SegmentUsageError(
                f"{out} holds results made with other settings (changed: {', '.join(changed)}); "
                "rerun with the same settings to resume, choose another --out, or pass "
                "--overwrite to start afresh"
            )
    (store / "images").mkdir(parents=True, exist_ok=True)
    for stale in (store / "images").glob(".*.tmp"):
        stale.unlink(missing_ok=True)  # the image in flight when a run was killed
    _atomic_write(settings_file, json.dumps(fingerprint, indent=1).encode("utf-8"))


def _changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, as ``key`` or ``key.setting a -> b``."""
    changed = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key), now.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changed += [
                f"{key}.{name} {old.get(name)!r} -> {new.get(name)!r}"
                for name in sorted(set(old) | set(new))
                if old.get(name) != new.get(name)
            ]
        else:
            changed.append(f"{key} {old!r} -> {new!r}")
    return changed


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("format") == STORE_FORMAT else None


def _is_done(store: Path, item: ImageItem) -> bool:
    record = _read_record(store / f"{item.key}.json")
    if record is None or record.get("file_name") != item.file_name:
        return False
    try:
        return bool(record.get("source") == _stamp(item.path))
    except OSError:
        return False


def assemble(
    out: Path,
    items: Sequence[ImageItem],
    categories: list[dict[str, Any]],
    fingerprint: dict[str, Any],
) -> tuple[Path, int, int]:
    """Write ``annotations.json`` (atomically) from the stored results of ``items``.

    Args:
        out: The output folder.
        items: The images of the run; those without a stored result are left out.
        categories: The COCO categories.
        fingerprint: The run's settings, recorded under ``info``.

    Returns:
        The file written, and how many images and annotations it holds.
    """
    store = out / STORE_DIR / "images"
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for item in sorted(items, key=lambda i: i.file_name):
        record = _read_record(store / f"{item.key}.json")
        if record is None or record.get("file_name") != item.file_name:
            continue
        image_id = len(images) + 1
        images.append(
            {
                "id": image_id,
                "file_name": item.file_name,
                "height": record["height"],
                "width": record["width"],
            }
        )
        for annotation in record["annotations"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **annotation})
    import samkit

    content = {
        "info": {
            "description": "masks made by samkit segment",
            "version": samkit.__version__,
            "settings": fingerprint,
        },
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    target = _atomic_write(out / ANNOTATIONS_FILE, json.dumps(content).encode("utf-8"))
    return target, len(images), len(annotations)


#: A function that runs the pending images and reports each result as it completes.
Runner = Callable[[JobSpec, list[ImageItem], Callable[[ImageItem, Failure | None], None]], None]


def run_local(
    spec: JobSpec,
    items: list[ImageItem],
    report: Callable[[ImageItem, Failure | None], None],
) -> None:
    """Segment the items one after another in this process, with one model."""
    if not items:
        return
    worker = ImageWorker(spec)
    for item in items:
        report(item, worker.process(item))


def _check_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SegmentUsageError(f"{name} must be True or False, but got {value!r}")
    return value


def segment_images(
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    model_type: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | None = None,
    fast: bool = False,
    boxes: str | os.PathLike[str] | None = None,
    png: bool = False,
    preview: bool = False,
    overwrite: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
    ray_actors: int | None = None,
    progress: bool = True,
    **amg_overrides: Any,
) -> SegmentSummary:
    """Segment files and folders of images into one COCO ``annotations.json``.

    Args:
        inputs: Image files, folders (searched recursively) and globs. Every image's
            ``file_name`` is its path relative to the input it was found under.
        out_dir: The output folder (created when missing); not inside an input folder.
        model_type: ``"vit_h"``, ``"vit_l"``, ``"vit_b"`` or ``"shapes"``; defaults to
            ``samkit.default_model_type()``.
        checkpoint: A checkpoint file for ``model_type`` (default: the official one).
        device: ``"cpu"``, ``"cuda"``, ...; defaults to ``samkit.default_device()``.
        fast: Load the model with ``load_sam(..., fast=True)``, where this samkit has it.
        boxes: A box file to prompt with instead of automatic masks: COCO JSON, a folder
            of YOLO txt files, or samkit boxes JSON (see :mod:`samkit.boxes`).
        png: Also write every mask as a PNG under ``out_dir/masks/<image path>/``.
        preview: Also write an annotated JPEG per image under ``out_dir/previews/``.
        overwrite: Delete the results of an earlier run in ``out_dir`` and start afresh
            (by default a run with the same settings resumes, and one with other
            settings is refused).
        engine: ``"local"`` (this process) or ``"ray"`` (Ray Data, see
            :mod:`samkit.segment_ray`).
        ray_address: The Ray cluster to connect to (``"auto"``, ``"ray://host:10001"``);
            by default a local Ray is started.
        ray_actors: How many model actors Ray runs (default: one per GPU of the
            cluster, or one per two CPUs when it has no GPU).
        progress: Show a progress bar (images done, images/s, time left) on stderr.
        **amg_overrides: Settings of ``SamAutomaticMaskGenerator`` that replace
            ``samkit.amg_settings(model_type)`` (``points_per_side=16``, ...).

    Returns:
        The :class:`SegmentSummary`: done, skipped, failed (with reasons), and the file.

    Raises:
        SegmentUsageError: If an argument is not valid, an input does not exist, the
            output folder is inside an input, the box file cannot be read, or
            ``out_dir`` holds results of other settings.

    Example:
        ```python
        summary = samkit.segment_images(["photos/"], "out/", points_per_side=16)
        ```
    """
    import samkit

    started = time.perf_counter()
    if engine not in ENGINES:
        raise SegmentUsageError(f"engine must be one of {', '.join(ENGINES)}, but got {engine!r}")
    for name, value in (
        ("fast", fast),
        ("png", png),
        ("preview", preview),
        ("overwrite", overwrite),
        ("progress", progress),
    ):
        _check_flag(name, value)
    if fast and not load_sam_accepts_fast():
        raise SegmentUsageError(
            "fast=True needs samkit.load_sam(fast=True), which this version of samkit does not "
            "have; run without --fast"
        )
    if not isinstance(out_dir, str | os.PathLike) or not str(out_dir).strip():
        raise SegmentUsageError(f"out_dir must be a folder path, but got {out_dir!r}")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise SegmentUsageError(f"--out must be a folder, but {out_dir} is a file")
    try:
        chosen = samkit.default_model_type() if model_type is None else model_type
        amg = samkit.amg_settings(chosen, **amg_overrides)
    except ValueError as error:
        raise SegmentUsageError(str(error)) from None
    if boxes is not None and amg_overrides:
        raise SegmentUsageError(
            f"{', '.join(sorted(amg_overrides))}: generator settings apply to automatic masks, "
            "but boxes were given to prompt with"
        )
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise SegmentUsageError(f"checkpoint file not found: {checkpoint}")
    runner: Runner = run_local
    if engine == "ray":
        from samkit.segment_ray import make_ray_runner

        runner = make_ray_runner(ray_address, ray_actors)
    found, failures = discover(inputs, out)
    box_file: BoxFile | None = None
    assigned: dict[str, ImageBoxes | str] = {}
    if boxes is not None:
        try:
            box_file = read_box_file(boxes)
        except (OSError, ValueError) as error:
            raise SegmentUsageError(str(error)) from None
        assigned = box_file.assign([name for _, name in found])
    stems = _output_stems([name for _, name in found])
    items: list[ImageItem] = []
    for path, file_name in found:
        given = assigned.get(file_name)
        if isinstance(given, str):
            failures.append(Failure(str(path), given))
            continue
        items.append(
            ImageItem(
                path=str(path.resolve()),
                file_name=file_name,
                key=_key(file_name),
                output_stem=stems[file_name],
                boxes=None if given is None else given.to_json(),
            )
        )
    spec = JobSpec(
        out_dir=str(out),
        model_type=chosen,
        checkpoint=None if checkpoint is None else str(Path(checkpoint).resolve()),
        device=device,
        fast=fast,
        mode="amg" if box_file is None else "boxes",
        amg=amg,
        png=png,
        preview=preview,
    )
    fingerprint = _fingerprint(spec, box_file)
    out.mkdir(parents=True, exist_ok=True)
    _open_store(out, fingerprint, overwrite)
    store = out / STORE_DIR / "images"
    summary = SegmentSummary(engine=engine)
    pending = []
    for item in items:
        if _is_done(store, item):
            summary.skipped += 1
        else:
            pending.append(item)
    categories = [AMG_CATEGORY] if box_file is None else box_file.categories
    bar = _progress_bar(len(items), summary.skipped, progress)

    def report(item: ImageItem, failure: Failure | None) -> None:
        if failure is None:
            summary.done += 1
        else:
            failures.append(failure)
        bar.update(1)

    try:
        runner(spec, pending, report)
    finally:
        bar.close()
        summary.failed = failures
        target, summary.images, summary.annotations = assemble(out, items, categories, fingerprint)
        summary.annotations_file = target
        summary.seconds = time.perf_counter() - started
        _write_summary(out, summary)
    return summary


def _progress_bar(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="img",
        desc="segment",
        disable=not enabled,
        dynamic_ncols=True,
    )


def _write_summary(out: Path, summary: SegmentSummary) -> None:
    content = {
        "done": summary.done,
        "skipped": summary.skipped,
        "failed": [asdict(f) for f in summary.failed],
        "images": summary.images,
        "annotations": summary.annotations,
        "seconds": summary.seconds,
        "engine": summary.engine,
    }
    _atomic_write(out / STORE_DIR / "summary.json", json.dumps(content, indent=1).encode("utf-8"))
