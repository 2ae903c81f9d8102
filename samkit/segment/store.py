"""The store under ``OUT/.samkit/``: what makes ``samkit segment`` resumable.

- ``settings.json`` records the settings the results were made with (the
  :func:`fingerprint`); a run with other settings is refused, unless it starts afresh,
  so results of two settings are never mixed. The device, the engine, ``fast`` and the
  output formats are not part of it: a run started on a laptop may be finished on a
  cluster, and a run may add a format (``settings.json`` keeps the folder's formats
  beside the settings: see :mod:`samkit.segment.outputs`);
- ``images/<key>.json`` holds one image's result, written atomically as soon as it is
  done, with the sha256 of its source and the files it wrote (an image whose content
  changed is redone: see :mod:`samkit.segment.source`);
- ``annotations.json`` is assembled from those records at the end of every run, and
  ``summary.json`` records what the run did;
- ``checkpoint.json`` caches the checkpoint's sha256 by path, size, times and inode.

A store that holds no result yet (a run that stopped before its first image) holds
nothing to mix, so a run with other settings takes it over. Every file is written
through :func:`samkit.files.atomic_write`, as strict JSON (:func:`samkit.files.json_text`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from samkit.boxes import BoxFile
from samkit.files import atomic_write, json_text
from samkit.segment.owned import JOURNAL_DIR, record_written, remove_own
from samkit.segment.source import same_source
from samkit.segment.spec import (
    ANNOTATIONS_FILE,
    STORE_DIR,
    STORE_FORMAT,
    ImageItem,
    JobSpec,
    SegmentSummary,
    SegmentUsageError,
)
from samkit.version import __version__


def images_dir(out: Path) -> Path:
    """The folder of the per-image records under the output folder ``out``."""
    return out / STORE_DIR / "images"


def fingerprint(spec: JobSpec, box_file: BoxFile | None, checkpoint_sha256: str) -> dict[str, Any]:
    """The settings the results depend on (not the device, the engine or ``fast``).

    Args:
        spec: The job's settings.
        box_file: The box file prompted with, or ``None`` for automatic masks.
        checkpoint_sha256: The sha256 of the checkpoint's content (wherever it is).

    Returns:
        A JSON-ready dict: format, model, checkpoint (its sha256), mode, generator
        settings, box file (kind, source, sha256), ``png`` and ``preview``.
    """
    return {
        "format": STORE_FORMAT,
        "model_type": spec.model_type,
        "checkpoint": {"sha256": checkpoint_sha256},
        "mode": spec.mode,
        "amg": spec.amg if spec.mode == "amg" else None,
        "texts": list(spec.texts) if spec.mode == "text" else None,
        "text_threshold": spec.text_threshold if spec.mode == "text" else None,
        "boxes": (
            None
            if box_file is None
            else {"kind": box_file.kind, "source": str(box_file.source), "sha256": box_file.sha256}
        ),
        "png": spec.png,
        "preview": spec.preview,
    }


def check_store(out: Path, settings: dict[str, Any], overwrite: bool) -> None:
    """Check, writing nothing, that the store may take this run's results.

    Args:
        out: The output folder (it may not exist yet).
        settings: The run's :func:`fingerprint`.
        overwrite: The earlier results will be deleted first, whatever their settings.

    Raises:
        SegmentUsageError: If ``out`` holds results of other settings (and not
            ``overwrite``); the message names what changed.
    """
    settings_file = out / STORE_DIR / "settings.json"
    if not overwrite and settings_file.is_file() and holds_results(out):
        check_settings(out, settings_file, settings)


def holds_results(out: Path) -> bool:
    """Whether the store holds an image's result, or the journal of one being written."""
    return any(
        next((out / STORE_DIR / name).glob("*.json"), None) is not None
        for name in ("images", JOURNAL_DIR)
    )


def open_store(
    out: Path, settings: dict[str, Any], overwrite: bool, formats: Sequence[str] = ("coco",)
) -> None:
    """Create the store for this run (after :func:`check_store`): the first write to ``out``.

    Args:
        out: The output folder (created when missing).
        settings: The run's :func:`fingerprint`.
        overwrite: Delete samkit's own files of an earlier run first (and only those).
        formats: The folder's formats, kept in ``settings.json`` beside the settings.
    """
    out.mkdir(parents=True, exist_ok=True)
    if overwrite:
        remove_own(out)
    images = images_dir(out)
    images.mkdir(parents=True, exist_ok=True)
    for stale in images.glob(".*.tmp"):
        stale.unlink(missing_ok=True)  # the image in flight when a run was killed
    content = {**settings, "formats": list(formats)}
    atomic_write(out / STORE_DIR / "settings.json", json_text(content, indent=1))


def check_settings(out: Path, settings_file: Path, settings: dict[str, Any]) -> None:
    """Refuse to mix: the stored settings must be the run's (as JSON gives them back).

    Raises:
        SegmentUsageError: If they differ; the message names what changed.
    """
    try:
        previous = json.loads(settings_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        previous = {}
    if isinstance(previous, dict):
        previous.pop("formats", None)  # the folder's formats may grow: not a setting
    now = json.loads(json_text(settings))
    if previous != now:
        changed = settings_changes(previous, now)
        raise SegmentUsageError(
            f"{out} holds results made with other settings (changed: {', '.join(changed)}); "
            "rerun with the same settings to resume, choose another --out, or pass "
            "--overwrite to start afresh"
        )


def settings_changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, as ``key a -> b`` or ``key.setting a -> b``.

    Example:
        ```pycon
        >>> settings_changes({"png": False, "amg": {"a": 1}}, {"png": True, "amg": {"a": 2}})
        ['amg.a 1 -> 2', 'png False -> True']

        ```
    """
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


def read_record(path: Path) -> dict[str, Any] | None:
    """One image's stored result, or ``None`` when it is missing, damaged or of another format."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) and record.get("format") == STORE_FORMAT else None


def write_record(out: Path, item: ImageItem, record: dict[str, Any]) -> Path:
    """Write one image's result into the store, atomically (the last file of an image)."""
    folder = images_dir(out)
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write(folder / f"{item.key}.json", json_text(record))


def is_done(out: Path, item: ImageItem, formats: Sequence[str] = ()) -> bool:
    """Whether the store holds ``item``'s result, made from the content the file has now.

    Args:
        out: The output folder.
        item: The image.
        formats: The formats its result must have been written in (a record that names
            none was written in COCO alone).
    """
    record = read_record(images_dir(out) / f"{item.key}.json")
    if record is None or record.get("file_name") != item.file_name:
        return False
    written = record.get("formats", ["coco"])
    if not isinstance(written, list) or not set(formats) <= set(written) | {"coco"}:
        return False
    return same_source(item.path, record.get("source"))


def assemble(
    out: Path,
    items: Sequence[ImageItem],
    categories: list[dict[str, Any]],
    settings: dict[str, Any],
) -> tuple[Path, int, int]:
    """Write ``annotations.json`` (atomically) from the stored results of ``items``.

    Args:
        out: The output folder.
        items: The images of the run; those without a stored result are left out.
        categories: The COCO categories.
        settings: The run's :func:`fingerprint`, recorded under ``info``.

    Returns:
        The file written, and how many images and annotations it holds.
    """
    content = coco_content(out, items, categories, settings)
    text = json_text(content)
    record_written(out, ANNOTATIONS_FILE, text)  # first: a run killed between the two owns it
    target = atomic_write(out / ANNOTATIONS_FILE, text)
    return target, len(content["images"]), len(content["annotations"])


def coco_content(
    out: Path,
    items: Sequence[ImageItem],
    categories: list[dict[str, Any]],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The COCO content of the stored results of ``items`` (as :func:`assemble` writes it)."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for item in sorted(items, key=lambda i: i.file_name):
        record = read_record(images_dir(out) / f"{item.key}.json")
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
    content = {
        "info": {
            "description": "masks made by samkit segment",
            "version": __version__,
            "settings": settings,
        },
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    return content


def images_without_masks(out: Path, items: Sequence[ImageItem]) -> list[str]:
    """The ``file_name`` of every image whose stored result holds no mask.

    Args:
        out: The output folder.
        items: The images of the run; those without a stored result are left out.

    Returns:
        Their names, sorted.
    """
    names = []
    for item in items:
        record = read_record(images_dir(out) / f"{item.key}.json")
        if record is not None and record.get("file_name") == item.file_name:
            if not record.get("annotations"):
                names.append(item.file_name)
    return sorted(names)


def write_summary(out: Path, summary: SegmentSummary) -> Path:
    """Write ``.samkit/summary.json``: what the run did (counts, failures, time, engine)."""
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
    return atomic_write(out / STORE_DIR / "summary.json", json_text(content, indent=1))
