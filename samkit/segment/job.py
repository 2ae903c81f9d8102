"""The job behind ``samkit segment``: many images into one COCO file, resumable.

:func:`segment_images` checks its arguments, finds the images (:mod:`.discovery`),
opens the store of the output folder (:mod:`.store`), runs the images not done yet on
an engine (:func:`run_local` here, or Ray: :mod:`.ray`) with a progress bar, and at the
end, even when interrupted, assembles ``annotations.json`` from every stored result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from samkit.boxes import BoxFile, ImageBoxes, read_box_file
from samkit.model import default_model_type
from samkit.segment.discovery import Found, discover, make_items
from samkit.segment.ray import make_ray_runner
from samkit.segment.spec import (
    AMG_CATEGORY,
    ENGINES,
    Failure,
    ImageItem,
    JobSpec,
    Report,
    Runner,
    SegmentSummary,
    SegmentUsageError,
)
from samkit.segment.store import (
    assemble,
    fingerprint,
    images_without_masks,
    is_done,
    open_store,
    write_summary,
)
from samkit.segment.worker import ImageWorker
from samkit.settings import amg_settings


def run_local(spec: JobSpec, items: list[ImageItem], report: Report) -> None:
    """Segment the items one after another in this process, with one model.

    Args:
        spec: The job's settings.
        items: The images to do (no model is loaded when there are none).
        report: Called once per image as it completes.
    """
    if not items:
        return
    worker = ImageWorker(spec)
    for item in items:
        report(item, worker.process(item))


def check_flag(name: str, value: object) -> bool:
    """``value`` when it is a bool.

    Raises:
        SegmentUsageError: If it is anything else (``"yes"``, ``1``, ``None``).
    """
    if not isinstance(value, bool):
        raise SegmentUsageError(f"{name} must be True or False, but got {value!r}")
    return value


def check_arguments(
    out_dir: str | os.PathLike[str], engine: str, flags: Mapping[str, object]
) -> Path:
    """Check the engine, the on/off settings and the output folder; the folder, resolved.

    Raises:
        SegmentUsageError: If the engine is unknown, a flag is not a bool, or ``out_dir``
            is not a path or names a file.
    """
    if engine not in ENGINES:
        raise SegmentUsageError(f"engine must be one of {', '.join(ENGINES)}, but got {engine!r}")
    for name, value in flags.items():
        check_flag(name, value)
    if not isinstance(out_dir, str | os.PathLike) or not str(out_dir).strip():
        raise SegmentUsageError(f"out_dir must be a folder path, but got {out_dir!r}")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise SegmentUsageError(f"--out must be a folder, but {out_dir} is a file")
    return out


def choose_model(
    model_type: str | None,
    checkpoint: str | os.PathLike[str] | None,
    boxes: str | os.PathLike[str] | None,
    amg_overrides: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """The model type and the generator's settings, checked.

    Returns:
        The model type (samkit's default when ``None``) and its generator settings with
        the overrides applied.

    Raises:
        SegmentUsageError: If the model type or a setting is not valid, settings were
            given with boxes, or the checkpoint file does not exist.
    """
    try:
        chosen = default_model_type() if model_type is None else model_type
        amg = amg_settings(chosen, **amg_overrides)
    except ValueError as error:
        raise SegmentUsageError(str(error)) from None
    if boxes is not None and amg_overrides:
        raise SegmentUsageError(
            f"{', '.join(sorted(amg_overrides))}: generator settings apply to automatic masks, "
            "but boxes were given to prompt with"
        )
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise SegmentUsageError(f"checkpoint file not found: {checkpoint}")
    return chosen, amg


def read_boxes(
    boxes: str | os.PathLike[str] | None, found: Sequence[Found]
) -> tuple[BoxFile | None, dict[str, ImageBoxes | str]]:
    """Read the box file, and give each image found its boxes (or why it has none).

    Returns:
        The box file (``None`` for automatic masks) and, per ``file_name``, its
        :class:`~samkit.boxes.ImageBoxes` or the reason it has none.

    Raises:
        SegmentUsageError: If the box file cannot be read.
    """
    if boxes is None:
        return None, {}
    try:
        box_file = read_box_file(boxes)
    except (OSError, ValueError) as error:
        raise SegmentUsageError(str(error)) from None
    return box_file, box_file.assign([name for _, name in found])


def pending_items(
    out: Path, items: Sequence[ImageItem], summary: SegmentSummary
) -> list[ImageItem]:
    """The items not done yet; those done by an earlier run are counted as skipped."""
    pending = []
    for item in items:
        if is_done(out, item):
            summary.skipped += 1
        else:
            pending.append(item)
    return pending


def progress_bar(total: int, initial: int, enabled: bool) -> Any:
    """A tqdm bar of images (done, images/s, time left) on stderr; silent when not ``enabled``."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="img",
        desc="segment",
        disable=not enabled,
        dynamic_ncols=True,
    )


def run_with_progress(
    runner: Runner,
    spec: JobSpec,
    pending: list[ImageItem],
    summary: SegmentSummary,
    total: int,
    progress: bool,
) -> None:
    """Run the pending items, counting each result into ``summary`` and the bar."""
    bar = progress_bar(total, summary.skipped, progress)

    def report(item: ImageItem, failure: Failure | None) -> None:
        if failure is None:
            summary.done += 1
        else:
            summary.failed.append(failure)
        bar.update(1)

    try:
        runner(spec, pending, report)
    finally:
        bar.close()


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
            :mod:`samkit.segment.ray`).
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
    started = time.perf_counter()
    flags = {"fast": fast, "png": png, "preview": preview, "overwrite": overwrite}
    out = check_arguments(out_dir, engine, {**flags, "progress": progress})
    chosen, amg = choose_model(model_type, checkpoint, boxes, amg_overrides)
    runner = run_local if engine == "local" else make_ray_runner(ray_address, ray_actors)
    found, failures = discover(inputs, out)
    box_file, assigned = read_boxes(boxes, found)
    items, unboxed = make_items(found, assigned)
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
    settings = fingerprint(spec, box_file)
    out.mkdir(parents=True, exist_ok=True)
    open_store(out, settings, overwrite)
    categories = [AMG_CATEGORY] if box_file is None else box_file.categories
    summary = SegmentSummary(engine=engine, failed=failures + unboxed)
    pending = pending_items(out, items, summary)
    try:
        run_with_progress(runner, spec, pending, summary, len(items), progress)
    finally:
        target, summary.images, summary.annotations = assemble(out, items, categories, settings)
        summary.no_masks = images_without_masks(out, items)
        summary.annotations_file = target
        summary.seconds = time.perf_counter() - started
        write_summary(out, summary)
    return summary
