"""Box files from detectors, read into one shape: boxes per image, and their categories.

Three kinds are read, and told apart by what they are:

- a **COCO JSON** file (``{"images": [...], "annotations": [...], "categories": [...]}``),
  as detectors export it; boxes are ``bbox`` ``[x, y, w, h]`` in pixels, matched to an
  image by its ``file_name``, with the file's own category ids and names;
- a **folder of YOLO txt files**, one per image (``cam1/0001.txt`` for
  ``cam1/0001.jpg``), each line ``class cx cy w h [confidence]`` with coordinates
  relative to the image's size; class names come from ``classes.txt`` in the folder
  when there is one;
- **samkit's boxes JSON** (what :func:`samkit.load_boxes` reads): one file, or a folder
  of them, each ``{"image": NAME, "detections": [{"label", "score", "xyxy"}]}``.

Example:
    ```python
    box_file = samkit.boxes.read_box_file("detections/coco.json")
    found = box_file.assign(["cam1/0001.jpg", "cam2/0001.jpg"])
    ```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from samkit.box_records import MAX_ID, BoxFile, ImageBoxes, Row, digest, image_boxes
from samkit.checks import is_finite_number
from samkit.files import read_json
from samkit.yolo import YOLO_CLASSES_FILE, read_yolo_folder

__all__ = [
    "YOLO_CLASSES_FILE",
    "BoxFile",
    "ImageBoxes",
    "read_box_file",
    "read_samkit_boxes",
    "read_yolo_folder",
]


def read_box_file(path: str | os.PathLike[str]) -> BoxFile:
    """Read a COCO JSON file, a YOLO txt folder or samkit boxes JSON (a file or a folder).

    Args:
        path: The file or folder.

    Returns:
        The :class:`BoxFile`.

    Raises:
        FileNotFoundError: If nothing is at ``path``.
        ValueError: If the file is none of the three kinds, or an entry is malformed; the
            message names the file, the entry and what was expected.
    """
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise ValueError(f"the box file must be a file or folder path, but got {path!r}")
    source = Path(path)
    if source.is_dir():
        texts = sorted(p for p in source.rglob("*.txt") if p.name != YOLO_CLASSES_FILE)
        jsons = sorted(source.rglob("*.json"))
        if texts and not jsons:
            return read_yolo_folder(source)
        if jsons and not texts:
            return read_samkit_boxes(source)
        raise ValueError(
            f"{source} must hold YOLO .txt files or samkit boxes .json files, but it holds "
            f"{len(texts)} .txt and {len(jsons)} .json files"
        )
    if not source.is_file():
        raise FileNotFoundError(f"box file not found: {source}")
    content = _read_json(source)
    if isinstance(content, dict) and "images" in content and "annotations" in content:
        return _coco_boxes(source, content)
    if isinstance(content, dict) and "detections" in content:
        return read_samkit_boxes(source)
    raise ValueError(
        f"{source} must be a COCO JSON file (keys 'images', 'annotations', 'categories') or "
        f"samkit boxes JSON (keys 'image', 'detections'), but it has "
        + (f"keys {sorted(content)}" if isinstance(content, dict) else type(content).__name__)
    )


def _read_json(file: Path) -> Any:
    # UTF-8, or UTF-16/32 with a byte-order mark; deep nesting refused: samkit.files
    return read_json(file)


def _coco_boxes(source: Path, content: Any) -> BoxFile:
    where = source.name
    if not isinstance(content, dict):
        raise ValueError(f"{source} must hold a COCO object, but got {type(content).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(content.get(key), list):
            raise ValueError(f"{where} key {key!r} must be a list")
    categories, names = _coco_names(content, where)
    rows: dict[int, list[Row]] = {i: [] for i in names}
    for i, annotation in enumerate(content["annotations"]):
        at = f"{where} annotation {i}"
        if not isinstance(annotation, dict):
            raise ValueError(f"{at} must be an object, but got {type(annotation).__name__}")
        image_id = annotation.get("image_id")
        if image_id not in names:
            raise ValueError(f"{at} has image_id {image_id!r}, which no image of {where} has")
        bbox = annotation.get("bbox")
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(is_finite_number(v) for v in bbox)
        ):
            raise ValueError(f"{at} key 'bbox' must be 4 numbers [x, y, w, h], but got {bbox!r}")
        if bbox[2] < 0 or bbox[3] < 0:
            raise ValueError(f"{at} key 'bbox' must have w, h >= 0, but got {bbox!r}")
        category_id = annotation.get("category_id", 0)
        if not isinstance(category_id, int) or isinstance(category_id, bool):
            raise ValueError(f"{at} key 'category_id' must be an int, but got {category_id!r}")
        if not 0 <= category_id <= MAX_ID:
            raise ValueError(
                f"{at} key 'category_id' must be from 0 to {MAX_ID}, but got {category_id}"
            )
        score = annotation.get("score")
        if score is not None and not is_finite_number(score):
            raise ValueError(f"{at} key 'score' must be a number, but got {score!r}")
        x, y, w, h = (float(v) for v in bbox)
        rows[image_id].append(([x, y, x + w, y + h], category_id, score))
        categories.setdefault(category_id, str(category_id))
    boxes: dict[str, ImageBoxes] = {}
    for image_id, file_name in names.items():
        if file_name in boxes:
            raise ValueError(f"{where} names the image {file_name!r} twice")
        boxes[file_name] = image_boxes(rows[image_id], relative=False)
    return BoxFile(
        source=source,
        kind="coco",
        categories=[{"id": i, "name": categories[i]} for i in sorted(categories)],
        boxes=boxes,
        sha256=digest([source.read_bytes()]),
    )


def _coco_names(content: dict[str, Any], where: str) -> tuple[dict[int, str], dict[int, str]]:
    """A COCO file's category names and image file names, by id, checked."""
    categories: dict[int, str] = {}
    for i, category in enumerate(content.get("categories") or []):
        if (
            not isinstance(category, dict)
            or not isinstance(category.get("id"), int)
            or not isinstance(category.get("name"), str)
        ):
            raise ValueError(f"{where} category {i} must have an int 'id' and a str 'name'")
        if not 0 <= category["id"] <= MAX_ID:
            raise ValueError(
                f"{where} category {i} 'id' must be from 0 to {MAX_ID}, but got {category['id']}"
            )
        categories[category["id"]] = category["name"]
    names: dict[int, str] = {}
    for i, image in enumerate(content["images"]):
        if (
            not isinstance(image, dict)
            or not isinstance(image.get("id"), int)
            or not isinstance(image.get("file_name"), str)
            or not image["file_name"]
        ):
            raise ValueError(f"{where} image {i} must have an int 'id' and a str 'file_name'")
        names[image["id"]] = image["file_name"]
    return categories, names


def read_samkit_boxes(path: str | os.PathLike[str]) -> BoxFile:
    """Read samkit's boxes JSON: one file, or every ``.json`` file in a folder.

    Each file is ``{"image": NAME, "detections": [{"label", "score", "xyxy"}]}`` (the
    format of :func:`samkit.load_boxes`); its boxes are keyed by ``image``. Categories are
    the labels, numbered from 1 in sorted order.

    Args:
        path: The file or the folder.

    Returns:
        The :class:`BoxFile`.

    Raises:
        FileNotFoundError: If nothing is at ``path``.
        ValueError: If a file is not of that form, or two files name the same image.
    """
    from samkit.samples import load_boxes

    source = Path(path)
    if source.is_dir():
        files = sorted(source.rglob("*.json"))
        if not files:
            raise ValueError(f"{source} holds no samkit boxes .json files")
    elif source.is_file():
        files = [source]
    else:
        raise FileNotFoundError(f"box file not found: {source}")
    read: dict[str, tuple[list[list[float]], list[str], list[float]]] = {}
    for file in files:
        content = _read_json(file)
        image = content.get("image") if isinstance(content, dict) else None
        if not isinstance(image, str) or not image:
            raise ValueError(f"{file} must name its image in key 'image' (a non-empty string)")
        if image in read:
            raise ValueError(f"{file} names the image {image!r}, which another file names too")
        detections = load_boxes(file)
        read[image] = (
            detections.xyxy.tolist(),
            [str(n) for n in detections.data["class_name"]],
            [] if detections.confidence is None else detections.confidence.tolist(),
        )
    labels = sorted({label for _, names, _ in read.values() for label in names})
    ids = {label: i for i, label in enumerate(labels, start=1)}
    boxes = {
        image: image_boxes(
            [(box, ids[n], s) for box, n, s in zip(xyxy, names, scores, strict=True)],
            relative=False,
        )
        for image, (xyxy, names, scores) in read.items()
    }
    return BoxFile(
        source=source,
        kind="samkit",
        categories=[{"id": ids[label], "name": label} for label in labels],
        boxes=boxes,
        sha256=digest(f.read_bytes() for f in files),
    )
