"""The formats ``samkit segment`` writes its masks in: COCO, YOLO labels, PNG cut-outs.

- ``coco`` (the default): ``annotations.json``, one COCO file for the run, assembled
  from the store at the end (:func:`samkit.segment.store.assemble`);
- ``yolo``: ``labels/<output_stem>.txt`` per image, a YOLO segmentation label file
  (:func:`samkit.formats.save_yolo_labels`, one line per piece of a mask), and
  ``data.yaml`` naming the classes (``names``, ``nc``), as Ultralytics and supervision
  read it. Class ``i`` is the ``i``-th COCO category by id (automatic masks: ``0``,
  ``object``; text prompts: phrase ``i``);
- ``png``: ``cutouts/<output_stem>/cutout_NNN.png`` per mask, the image where the mask
  is and transparent elsewhere, cut down to the mask's box
  (:func:`samkit.formats.save_cutout`), numbered in the order of the annotations.

Every file is written atomically and listed in the image's record (``data.yaml`` is
recorded by its sha256, as ``annotations.json``), so ``--overwrite`` and resume know
them. A folder keeps every format it was given: a run adds formats (the images done
without them are segmented again), and a run that asks for fewer still keeps the others
up to date; ``--overwrite`` starts afresh with the formats asked for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv

from samkit.files import atomic_write, json_text
from samkit.formats import save_cutout, save_yolo_labels
from samkit.segment.owned import JOURNAL_DIR, record_written
from samkit.segment.spec import DATA_YAML, STORE_DIR, ImageItem, SegmentUsageError
from samkit.segment.store import assemble, coco_content, holds_results, images_dir

#: The formats ``samkit segment`` writes, in the order they are listed.
FORMATS = ("coco", "yolo", "png")

#: The formats of a run that asks for none.
DEFAULT_FORMATS = ("coco",)


def check_formats(formats: object) -> tuple[str, ...]:
    """The formats asked for, in :data:`FORMATS` order, each once.

    Args:
        formats: A format name, names separated by commas (``"coco,yolo"``), or a list
            of those (``--format`` repeated).

    Returns:
        The formats, for example ``("coco", "yolo")``.

    Raises:
        SegmentUsageError: If a name is not one of :data:`FORMATS`, or none is given.

    Example:
        ```pycon
        >>> check_formats(["png,coco", "coco"])
        ('coco', 'png')

        ```
    """
    given = [formats] if isinstance(formats, str) else formats
    expected = f"one or more of {', '.join(FORMATS)} (comma-separated, or the option repeated)"
    if not isinstance(given, Sequence) or not all(isinstance(g, str) for g in given):
        raise SegmentUsageError(f"format must be {expected}, but got {formats!r}")
    names = [name.strip().lower() for text in given for name in text.split(",")]
    for name in names:
        if name not in FORMATS:
            raise SegmentUsageError(f"format must be {expected}, but got {name!r}")
    if not names:
        raise SegmentUsageError(f"format must be {expected}, but got none")
    return tuple(name for name in FORMATS if name in names)


def stored_formats(out: Path) -> tuple[str, ...]:
    """The formats the store in ``out`` was written with (COCO for a store that says none)."""
    try:
        settings = json.loads((out / STORE_DIR / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return ()
    kept = settings.get("formats", list(DEFAULT_FORMATS)) if isinstance(settings, dict) else []
    return tuple(name for name in FORMATS if isinstance(kept, list) and name in kept)


def folder_formats(out: Path, asked: Sequence[str], overwrite: bool) -> tuple[str, ...]:
    """The formats a run writes: those asked for, and those the folder already has.

    Args:
        out: The output folder.
        asked: The formats asked for (:func:`check_formats`).
        overwrite: The run starts afresh: only ``asked``.
    """
    if overwrite or not holds_results(out):
        return tuple(asked)
    kept = stored_formats(out)
    return tuple(name for name in FORMATS if name in asked or name in kept)


def image_formats(formats: Sequence[str]) -> list[str]:
    """The formats that write files per image (COCO's per-image part is the record itself)."""
    return [name for name in formats if name != "coco"]


def format_files(formats: Sequence[str], item: ImageItem, masks: int) -> list[str]:
    """The files (and cut-out folder, ending in ``/``) an image writes for ``formats``."""
    files = []
    if "yolo" in formats:
        files.append(f"labels/{item.output_stem}.txt")
    if "png" in formats and masks:
        folder = f"cutouts/{item.output_stem}/"
        files += [folder, *(f"{folder}cutout_{i:03d}.png" for i in range(masks))]
    return files


def yolo_class_ids(category_ids: Any, classes: Sequence[int]) -> list[int]:
    """Each mask's YOLO class: the position of its COCO category among ``classes``."""
    if category_ids is None or not classes:
        return []
    position = {category: index for index, category in enumerate(classes)}
    return [position.get(int(category), 0) for category in category_ids]


def write_formats(
    out: Path,
    spec_formats: Sequence[str],
    classes: Sequence[int],
    image: npt.NDArray[np.uint8],
    detections: sv.Detections,
    item: ImageItem,
) -> None:
    """Write one image's YOLO label file and cut-outs (those of ``spec_formats``).

    Args:
        out: The output folder.
        spec_formats: The run's formats.
        classes: The COCO category ids in YOLO class order.
        image: The RGB image, uint8 `(H, W, 3)`.
        detections: Its masks `(N, H, W)`, ``data["category_id"]`` when they have classes.
        item: The image.
    """
    height, width = image.shape[:2]
    masks = np.zeros((0, height, width), bool)
    if detections.mask is not None and len(detections):
        masks = np.asarray(detections.mask, dtype=bool)
    if "yolo" in spec_formats:
        label = out / "labels" / f"{item.output_stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        categories = detections.data.get("category_id") if len(masks) else None
        ids = yolo_class_ids(categories, classes) or [0] * len(masks)
        save_yolo_labels(masks, label, class_ids=ids)
    if "png" in spec_formats and len(masks):
        folder = out / "cutouts" / item.output_stem
        folder.mkdir(parents=True, exist_ok=True)
        for i, mask in enumerate(masks):
            save_cutout(image, mask, folder / f"cutout_{i:03d}.png")


def remove_stale(out: Path, before: Sequence[str], now: Sequence[str]) -> None:
    """Delete the files an image's earlier record listed that its new one does not.

    Folders (ending in ``/``) are removed only when left empty. Names that leave ``out``
    are never touched.
    """
    for name in sorted(set(before) - set(now), key=len, reverse=True):
        if name.startswith("/") or ".." in name.split("/"):
            continue
        target = out / name
        if name.endswith("/"):
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
        elif target.is_file() or target.is_symlink():
            target.unlink()


def data_yaml_text(categories: Sequence[dict[str, Any]]) -> str:
    """The YOLO ``data.yaml`` of the categories: ``names`` (in class order) and ``nc``.

    The names are a JSON list, which YAML reads: names with ``:`` or quotes need no care.

    Example:
        ```pycon
        >>> print(data_yaml_text([{"id": 3, "name": "dog"}, {"id": 1, "name": "cat"}]), end="")
        names: ["cat", "dog"]
        nc: 2

        ```
    """
    ordered = sorted(categories, key=lambda c: c["id"])
    names = [str(category["name"]) for category in ordered]
    return f"names: {json_text(names)}\nnc: {len(ordered)}\n"


def write_data_yaml(out: Path, categories: Sequence[dict[str, Any]]) -> Path:
    """Write ``data.yaml`` atomically, its sha256 recorded first (so it is samkit's own)."""
    text = data_yaml_text(categories)
    record_written(out, DATA_YAML, text)
    return atomic_write(out / DATA_YAML, text)


def write_run_files(
    out: Path,
    formats: Sequence[str],
    items: Sequence[ImageItem],
    categories: list[dict[str, Any]],
    settings: dict[str, Any],
) -> tuple[Path | None, int, int]:
    """Write the files of the whole run: ``annotations.json`` (COCO), ``data.yaml`` (YOLO).

    Args:
        out: The output folder.
        formats: The folder's formats.
        items: The images of the run; those without a stored result are left out.
        categories: The COCO categories.
        settings: The run's fingerprint, recorded in ``annotations.json``.

    Returns:
        ``annotations.json`` (``None`` without COCO), and how many images and masks
        the stored results of ``items`` hold.
    """
    if "yolo" in formats:
        write_data_yaml(out, categories)
    if "coco" in formats:
        return assemble(out, items, categories, settings)
    content = coco_content(out, items, categories, settings)
    return None, len(content["images"]), len(content["annotations"])


def earlier_files(out: Path, key: str) -> list[str]:
    """The files an image's earlier result listed, and those a killed run was writing."""
    files: list[str] = []
    for entry in (images_dir(out) / f"{key}.json", out / STORE_DIR / JOURNAL_DIR / f"{key}.json"):
        try:
            listed = json.loads(entry.read_text(encoding="utf-8")).get("files")
        except (OSError, ValueError, RecursionError, AttributeError):
            continue
        if isinstance(listed, list):
            files += [name for name in listed if isinstance(name, str) and name not in files]
    return files
