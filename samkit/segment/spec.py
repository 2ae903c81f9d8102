"""What ``samkit segment`` is asked and what it reports: settings, items, errors, summary.

These are the plain values every other part of the job passes around: the
:class:`JobSpec` a worker is built from (picklable, for Ray actors), one
:class:`ImageItem` per image, the :class:`Failure` of an input that gave no result,
and the :class:`SegmentSummary` of a run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The value of ``"format"`` in the files under ``OUT/.samkit/``.
STORE_FORMAT = "samkit-segment-2"

#: The folder under ``--out`` that holds the per-image results and the settings.
STORE_DIR = ".samkit"

#: The file the whole run is assembled into.
ANNOTATIONS_FILE = "annotations.json"

#: The YOLO class list ``samkit segment --format yolo`` writes beside ``labels/``.
DATA_YAML = "data.yaml"

#: The engines :func:`samkit.segment_images` runs on.
ENGINES = ("local", "ray")

#: The COCO category of automatic masks (they have no class of their own).
AMG_CATEGORY = {"id": 1, "name": "object"}


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
    """What a run of :func:`samkit.segment_images` did.

    Attributes:
        done: Images segmented by this run.
        skipped: Images already done by an earlier run with the same settings.
        failed: The inputs that gave no result, with the reason.
        annotations_file: The COCO file written (all done and skipped images), or
            ``None`` when the run wrote no COCO.
        images: Images with a result (those in ``annotations_file``).
        annotations: Their masks.
        seconds: Wall-clock time of the run.
        engine: ``"local"`` or ``"ray"``.
        no_masks: Images done (or skipped) with no mask: nothing passed the filters.
        formats: The formats written (see :mod:`samkit.segment.outputs`).
        out_dir: The output folder.
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
    formats: tuple[str, ...] = ("coco",)
    out_dir: Path | None = None

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
        lines += self.written()
        if self.done:
            lines.append(
                f"{self.done / max(self.seconds, 1e-9):.2f} images/s "
                f"({self.seconds:.1f} s, {self.engine} engine)"
            )
        return "\n".join(lines)

    def written(self) -> list[str]:
        """One line per format: what it holds and where it went."""
        held = f"{self.images} images, {self.annotations} masks"
        lines = [] if self.annotations_file is None else [f"{held} -> {self.annotations_file}"]
        if self.out_dir is None:
            return lines
        if "yolo" in self.formats:
            lines.append(
                f"{held} -> {self.out_dir / 'labels'} (YOLO; classes in {self.out_dir / DATA_YAML})"
            )
        if "png" in self.formats:
            lines.append(f"{held} -> {self.out_dir / 'cutouts'} (PNG cut-outs)")
        return lines


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
        mode: ``"amg"`` (automatic masks), ``"boxes"`` or ``"text"`` (SAM 3).
        amg: The generator's settings (for ``"amg"``).
        png: Write every mask as a PNG.
        preview: Write an annotated JPEG per image.
        texts: The phrases to segment with SAM 3 (``"text"``): category ``i + 1`` is
            phrase ``i``.
        text_threshold: The score an instance of a phrase needs to be kept.
        formats: The formats to write (:mod:`samkit.segment.outputs`).
        classes: The COCO category ids in YOLO class order (for ``"yolo"``).
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
    texts: tuple[str, ...] = ()
    text_threshold: float = 0.5
    formats: tuple[str, ...] = ("coco",)
    classes: tuple[int, ...] = ()


#: Called once per image as it completes: the image, and ``None`` or its failure.
Report = Callable[[ImageItem, Failure | None], None]

#: A function that runs the pending images and reports each result as it completes.
Runner = Callable[[JobSpec, list[ImageItem], Report], None]

#: Runs the pending images on a started engine (its model loaded, its cluster joined).
Run = Callable[[list[ImageItem], Report], None]

#: Starts an engine for a job (loading the model, joining the cluster) before anything is
#: written to the output folder, and stops it on leaving: ``with start(spec) as run:``.
Engine = Callable[[JobSpec], AbstractContextManager[Run]]
