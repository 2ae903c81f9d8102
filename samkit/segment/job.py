"""The job behind ``samkit segment``: many images into one COCO file, resumable.

:func:`segment_images` checks its arguments, finds the images (:mod:`.discovery`),
checks the output folder without writing to it (only samkit's own files in it, and
results of the same settings: :mod:`.owned`, :mod:`.store`), starts an engine (the
local one here, which loads the model, or Ray, which joins the cluster: :mod:`.ray`),
and only then opens the store and runs the images not done yet, with a progress bar.
At the end, even when interrupted, it assembles ``annotations.json`` from every stored
result. So a run that cannot start writes nothing.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from samkit.boxes import BoxFile, ImageBoxes, read_box_file
from samkit.model import MODEL_TYPES
from samkit.segment.arguments import check_arguments, check_text, choose_model
from samkit.segment.discovery import Found, discover, make_items
from samkit.segment.outputs import check_formats, folder_formats, write_run_files
from samkit.segment.owned import check_folder
from samkit.segment.ray import make_ray_engine
from samkit.segment.source import checkpoint_sha256, hub_identity, write_checkpoint_cache
from samkit.segment.spec import (
    AMG_CATEGORY,
    Engine,
    Failure,
    ImageItem,
    JobSpec,
    Report,
    Run,
    SegmentSummary,
    SegmentUsageError,
)
from samkit.segment.store import (
    check_store,
    fingerprint,
    images_without_masks,
    is_done,
    open_store,
    write_summary,
)
from samkit.segment.worker import ImageWorker


@contextlib.contextmanager
def local_engine(spec: JobSpec) -> Iterator[Run]:
    """The local engine: loads one model in this process (before anything is written).

    Yields:
        A function that segments the items one after another, reporting each.
    """
    worker = ImageWorker(spec)

    def run(items: list[ImageItem], report: Report) -> None:
        for item in items:
            report(item, worker.process(item))

    yield run


def run_local(spec: JobSpec, items: list[ImageItem], report: Report) -> None:
    """Segment the items one after another in this process, with one model.

    Args:
        spec: The job's settings.
        items: The images to do (no model is loaded when there are none).
        report: Called once per image as it completes.
    """
    if not items:
        return
    with local_engine(spec) as run:
        run(items, report)


@contextlib.contextmanager
def started(engine: Engine, spec: JobSpec, needed: bool) -> Iterator[Run]:
    """The engine started when there are images to do; a run of nothing otherwise."""
    if not needed:
        yield lambda items, report: None
        return
    with engine(spec) as run:
        yield run


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


def find_items(
    inputs: Sequence[str | os.PathLike[str]], out: Path, boxes: str | os.PathLike[str] | None
) -> tuple[list[ImageItem], list[Failure], BoxFile | None]:
    """The images of the inputs with their boxes, the inputs that gave none, the box file.

    Raises:
        SegmentUsageError: If an input does not exist, ``out`` is inside one, or the box
            file cannot be read.
    """
    found, failures = discover(inputs, out)
    box_file, assigned = read_boxes(boxes, found)
    items, unboxed = make_items(found, assigned)
    return items, failures + unboxed, box_file


def pending_items(
    out: Path, items: Sequence[ImageItem], summary: SegmentSummary, formats: Sequence[str] = ()
) -> list[ImageItem]:
    """The items not done yet (or not in every format); the others are counted as skipped."""
    pending = []
    for item in items:
        if is_done(out, item, formats):
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
    run: Run,
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
        run(pending, report)
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
    text: Sequence[str] | None = None,
    text_threshold: float = 0.5,
    formats: str | Sequence[str] = "coco",
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
        overwrite: Delete samkit's own files of an earlier run in ``out_dir`` (only
            those: see :mod:`samkit.segment.owned`) and start afresh (by default a run
            with the same settings resumes, and one with other settings is refused).
        engine: ``"local"`` (this process) or ``"ray"`` (Ray Data, see
            :mod:`samkit.segment.ray`).
        ray_address: The Ray cluster to connect to (``"auto"``, ``"ray://host:10001"``);
            by default a local Ray is started.
        ray_actors: How many model actors Ray runs (default: one per GPU of the
            cluster, or one per two CPUs when it has no GPU).
        progress: Show a progress bar (images done, images/s, time left) on stderr.
        text: Phrases to segment with SAM 3 instead (``samkit.hf.segment_text``): one
            COCO category per phrase, every instance whose score passes
            ``text_threshold``. The model is ``"sam3"``, its weights
            ``SAMKIT_HF_WEIGHTS``'s or ``checkpoint`` (a ``save_pretrained`` folder).
        text_threshold: The score (0 to 1) an instance of a phrase needs to be kept.
        formats: What to write, one or more of ``"coco"`` (``annotations.json``),
            ``"yolo"`` (``labels/*.txt`` and ``data.yaml``) and ``"png"`` (cut-outs
            under ``cutouts/``), as a list or comma-separated (see
            :mod:`samkit.segment.outputs`). A folder keeps the formats it has: an
            earlier run's are written too, unless ``overwrite``.
        **amg_overrides: Settings of ``SamAutomaticMaskGenerator`` that replace
            ``samkit.amg_settings(model_type)`` (``points_per_side=16``, ...).

    Returns:
        The :class:`SegmentSummary`: done, skipped, failed (with reasons), and the file.

    Raises:
        SegmentUsageError: If an argument or generator setting is not valid, an input
            does not exist, the output folder is inside an input, cannot be written or
            holds files samkit did not write, the box file or checkpoint cannot be read,
            ``out_dir`` holds results of other settings, or the Ray cluster at
            ``ray_address`` cannot be reached or joined. Nothing is written then.

    Example:
        ```python
        summary = samkit.segment_images(["photos/"], "out/", points_per_side=16)
        ```
    """
    started_at = time.perf_counter()
    flags = {"fast": fast, "png": png, "preview": preview, "overwrite": overwrite}
    out = check_arguments(out_dir, engine, {**flags, "progress": progress})
    texts = check_text(text, text_threshold, model_type, boxes, amg_overrides)
    asked = check_formats(formats)
    chosen, amg = choose_model(model_type, checkpoint, boxes, amg_overrides, fast, texts)
    engine_start = local_engine if engine == "local" else make_ray_engine(ray_address, ray_actors)
    items, failures, box_file = find_items(inputs, out, boxes)
    categories = job_categories(box_file, texts)
    spec = JobSpec(
        out_dir=str(out),
        model_type=chosen,
        checkpoint=None if checkpoint is None else str(Path(checkpoint).resolve()),
        device=device,
        fast=fast,
        mode="text" if texts else "amg" if box_file is None else "boxes",
        amg=amg,
        png=png,
        preview=preview,
        texts=texts,
        text_threshold=float(text_threshold),
        formats=folder_formats(out, asked, overwrite),
        classes=tuple(sorted(int(c["id"]) for c in categories)),
    )
    sha256, cache = checkpoint_identity(spec, out)
    settings = fingerprint(spec, box_file, sha256)
    check_folder(out, out_dir)
    check_store(out, settings, overwrite)
    summary = SegmentSummary(engine=engine, failed=failures)
    pending = list(items) if overwrite else pending_items(out, items, summary, spec.formats)
    with started(engine_start, spec, bool(pending)) as run:
        open_output(out, out_dir, settings, overwrite, cache, spec.formats)  # first write
        try:
            run_with_progress(run, pending, summary, len(items), progress)
        finally:
            finish_run(spec, items, categories, settings, summary)
            summary.seconds = time.perf_counter() - started_at
            write_summary(out, summary)
    return summary


def finish_run(
    spec: JobSpec,
    items: Sequence[ImageItem],
    categories: list[dict[str, Any]],
    settings: dict[str, Any],
    summary: SegmentSummary,
) -> None:
    """Write the files of the whole run (:mod:`.outputs`) and count them into ``summary``."""
    out = Path(spec.out_dir)
    written = write_run_files(out, spec.formats, items, categories, settings)
    summary.annotations_file, summary.images, summary.annotations = written
    summary.no_masks = images_without_masks(out, items)
    summary.formats, summary.out_dir = spec.formats, out


def open_output(
    out: Path,
    out_dir: str | os.PathLike[str],
    settings: dict[str, Any],
    overwrite: bool,
    cache: dict[str, Any] | None,
    formats: Sequence[str] = ("coco",),
) -> None:
    """Open the store in ``out`` and keep the checkpoint's sha256: the first writes there.

    Raises:
        SegmentUsageError: If ``out`` cannot be written to.
    """
    try:
        open_store(out, settings, overwrite, formats)
        write_checkpoint_cache(out, cache)
    except OSError as error:
        reason = error.strerror or str(error)
        raise SegmentUsageError(f"cannot write to --out {out_dir}: {reason}") from None


def job_categories(box_file: BoxFile | None, texts: tuple[str, ...]) -> list[dict[str, Any]]:
    """The COCO categories of a job: one per phrase, the box file's, or SAM's one object."""
    if texts:
        return [{"id": i + 1, "name": phrase} for i, phrase in enumerate(texts)]
    return [AMG_CATEGORY] if box_file is None else box_file.categories


def checkpoint_identity(spec: JobSpec, out: Path) -> tuple[str, dict[str, Any] | None]:
    """The sha256 of the job's checkpoint, and the cache entry to keep (see ``source``).

    A transformers model (SAM 2.1, SAM 3) is known by its Hub repository and the
    weights asked for, or by the digest of its ``save_pretrained`` folder.

    Raises:
        SegmentUsageError: If the checkpoint (given, or ``SAMKIT_CHECKPOINT``) cannot be read.
    """
    try:
        if MODEL_TYPES[spec.model_type].hub is not None:
            return hub_identity(spec.model_type, spec.checkpoint), None
        return checkpoint_sha256(spec.model_type, spec.checkpoint, out)
    except (OSError, ValueError) as error:
        raise SegmentUsageError(str(error)) from None
