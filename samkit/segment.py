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

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from samkit.boxes import BoxFile, ImageBoxes, read_box_file
from samkit.segment_job import (
    AMG_CATEGORY,
    ANNOTATIONS_FILE,
    ENGINES,
    STORE_DIR,
    STORE_FORMAT,
    Failure,
    ImageItem,
    ImageWorker,
    JobSpec,
    SegmentSummary,
    SegmentUsageError,
    _atomic_write,
    _key,
    _output_stems,
    _stamp,
    discover,
    images_without_masks,
)


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
        summary.no_masks = images_without_masks(store, items)
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
        "no_masks": summary.no_masks,
    }
    _atomic_write(out / STORE_DIR / "summary.json", json.dumps(content, indent=1).encode("utf-8"))
