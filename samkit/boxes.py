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

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt

from samkit.files import decode_text, read_json

#: The kinds of box file :func:`read_box_file` reads.
BOX_FILE_KINDS = ("coco", "yolo", "samkit")

#: The file in a YOLO folder that names the classes, one per line (line i is class i).
YOLO_CLASSES_FILE = "classes.txt"

#: The largest category id or class number read (COCO's ids are 32-bit in practice).
MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class ImageBoxes:
    """The boxes a box file gives for one image.

    Attributes:
        xyxy: Boxes as a float32 array of shape `(N, 4)`, ``[x0, y0, x1, y1]``; in pixels,
            or relative to the image's width and height (in `[0, 1]`) when ``relative``.
        category_id: The category of each box, an int64 array of shape `(N,)`.
        score: The detector's confidence of each box, float32 `(N,)`, or ``None`` when the
            file gives none.
        relative: Whether ``xyxy`` is relative to the image's size (YOLO) or in pixels.
    """

    xyxy: npt.NDArray[np.float32]
    category_id: npt.NDArray[np.int64]
    score: npt.NDArray[np.float32] | None = None
    relative: bool = False

    def __len__(self) -> int:
        return len(self.xyxy)

    def to_pixels(self, height: int, width: int) -> npt.NDArray[np.float32]:
        """The boxes in pixels of an image of this size, clipped to the image.

        Args:
            height: The image's height in pixels.
            width: The image's width in pixels.

        Returns:
            A float32 array of shape `(N, 4)`, ``[x0, y0, x1, y1]`` in pixels.
        """
        boxes = self.xyxy.astype(np.float32).copy()
        if self.relative:
            boxes *= np.array([width, height, width, height], dtype=np.float32)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        return boxes

    def to_json(self) -> dict[str, Any]:
        """The boxes as JSON-ready lists (the inverse of :meth:`from_json`)."""
        return {
            "xyxy": self.xyxy.tolist(),
            "category_id": self.category_id.tolist(),
            "score": None if self.score is None else self.score.tolist(),
            "relative": self.relative,
        }

    @classmethod
    def from_json(cls, content: Mapping[str, Any]) -> ImageBoxes:
        """Boxes from the dict :meth:`to_json` gives."""
        score = content.get("score")
        return cls(
            xyxy=np.array(content["xyxy"], dtype=np.float32).reshape(-1, 4),
            category_id=np.array(content["category_id"], dtype=np.int64).reshape(-1),
            score=None if score is None else np.array(score, dtype=np.float32).reshape(-1),
            relative=bool(content["relative"]),
        )


@dataclass(frozen=True)
class BoxFile:
    """A box file read whole: the boxes of every image it names, and the categories.

    Attributes:
        source: The file or folder that was read.
        kind: ``"coco"``, ``"yolo"`` or ``"samkit"``.
        categories: COCO categories, ``[{"id": int, "name": str}]``, sorted by id.
        boxes: Boxes per image, keyed by the image's name as the file gives it (a COCO
            ``file_name``, a YOLO txt path without its suffix, a samkit ``image``).
        sha256: A digest of the content read, so a changed box file can be noticed.
    """

    source: Path
    kind: str
    categories: list[dict[str, Any]]
    boxes: dict[str, ImageBoxes]
    sha256: str

    def assign(self, file_names: Sequence[str]) -> dict[str, ImageBoxes | str]:
        """Find the boxes of each image, without guessing.

        An image matches a name of the file by its whole relative path (``cam1/0001.jpg``),
        or that path without its suffix, or else by its base name (``0001.jpg``, or
        ``0001``) when only one image of ``file_names`` and only one name of the box file
        have that base name.

        Args:
            file_names: The images' relative paths, with ``/`` between folders.

        Returns:
            For every file name, its :class:`ImageBoxes`, or a string saying why none were
            found (the reason is meant for the user).
        """
        exact: dict[str, str] = {}
        base: dict[str, list[str]] = {}
        for name in self.boxes:
            for form in _forms(name, whole=True):
                exact.setdefault(form, name)
            for form in _forms(name, whole=False):
                base.setdefault(form, []).append(name)
        image_bases = Counter(form for f in file_names for form in set(_forms(f, whole=False)))
        found: dict[str, ImageBoxes | str] = {}
        for file_name in file_names:
            match = next((exact[f] for f in _forms(file_name, whole=True) if f in exact), None)
            if match is None:
                for form in _forms(file_name, whole=False):
                    names = sorted(set(base.get(form, [])))
                    if len(names) == 1 and image_bases[form] == 1:
                        match = names[0]
                        break
                    if names:
                        found[file_name] = (
                            f"no boxes: {self.source} has no entry for {file_name!r}, and its "
                            f"base name {form!r} is not unique ({', '.join(names[:3])}"
                            f"{', ...' if len(names) > 3 else ''} in the box file, "
                            f"{image_bases[form]} image(s) in the inputs)"
                        )
                        break
            if match is not None:
                found[file_name] = self.boxes[match]
            elif file_name not in found:
                found[file_name] = f"no boxes: {self.source} has no entry for {file_name!r}"
        return found


def _forms(name: str, *, whole: bool) -> list[str]:
    """The forms a name is matched by: the whole path (or base name), then without suffix."""
    path = PurePosixPath(name.replace("\\", "/"))
    if not whole:
        path = PurePosixPath(path.name)
    forms = [str(path)]
    if path.suffix:
        forms.append(str(path.with_suffix("")))
    return forms


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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


def _digest(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def read_coco_boxes(path: str | os.PathLike[str]) -> BoxFile:
    """Read the boxes of a COCO JSON file (``bbox`` in pixels, ``[x, y, w, h]``).

    Args:
        path: The JSON file.

    Returns:
        The :class:`BoxFile`; every image of ``images`` has an entry (an image without
        annotations has no boxes), keyed by its ``file_name``.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not COCO JSON with boxes.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"box file not found: {source}")
    return _coco_boxes(source, _read_json(source))


def _coco_boxes(source: Path, content: Any) -> BoxFile:
    where = source.name
    if not isinstance(content, dict):
        raise ValueError(f"{source} must hold a COCO object, but got {type(content).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(content.get(key), list):
            raise ValueError(f"{where} key {key!r} must be a list")
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
    rows: dict[int, list[tuple[list[float], int, float | None]]] = {i: [] for i in names}
    for i, annotation in enumerate(content["annotations"]):
        at = f"{where} annotation {i}"
        if not isinstance(annotation, dict):
            raise ValueError(f"{at} must be an object, but got {type(annotation).__name__}")
        image_id = annotation.get("image_id")
        if image_id not in names:
            raise ValueError(f"{at} has image_id {image_id!r}, which no image of {where} has")
        bbox = annotation.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(_number(v) for v in bbox):
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
        if score is not None and not _number(score):
            raise ValueError(f"{at} key 'score' must be a number, but got {score!r}")
        x, y, w, h = (float(v) for v in bbox)
        rows[image_id].append(([x, y, x + w, y + h], category_id, score))
        categories.setdefault(category_id, str(category_id))
    boxes: dict[str, ImageBoxes] = {}
    for image_id, file_name in names.items():
        if file_name in boxes:
            raise ValueError(f"{where} names the image {file_name!r} twice")
        boxes[file_name] = _image_boxes(rows[image_id], relative=False)
    return BoxFile(
        source=source,
        kind="coco",
        categories=[{"id": i, "name": categories[i]} for i in sorted(categories)],
        boxes=boxes,
        sha256=_digest([source.read_bytes()]),
    )


def _image_boxes(rows: list[tuple[list[float], int, float | None]], relative: bool) -> ImageBoxes:
    scores = [s for _, _, s in rows]
    return ImageBoxes(
        xyxy=np.array([r[0] for r in rows], dtype=np.float32).reshape(-1, 4),
        category_id=np.array([r[1] for r in rows], dtype=np.int64),
        score=(
            np.array(scores, dtype=np.float32)
            if rows and all(s is not None for s in scores)
            else None
        ),
        relative=relative,
    )


def read_yolo_folder(path: str | os.PathLike[str]) -> BoxFile:
    """Read a folder of YOLO txt files: ``class cx cy w h [confidence]`` per line.

    Args:
        path: The folder; txt files are found in it and its subfolders, and each is keyed
            by its path relative to the folder, without ``.txt``. ``classes.txt`` (when
            present) names the classes, one per line.

    Returns:
        The :class:`BoxFile`, with boxes relative to the image's size; category ids are
        the class numbers, named by ``classes.txt`` or by the number itself.

    Raises:
        FileNotFoundError: If ``path`` is not a folder.
        ValueError: If a line is not 5 or 6 numbers with a class number >= 0 and
            coordinates in `[0, 1]`.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"YOLO folder not found: {folder}")
    class_file = folder / YOLO_CLASSES_FILE
    class_names = (
        [
            line.strip()
            for line in decode_text(class_file.read_bytes(), str(class_file)).splitlines()
        ]
        if class_file.is_file()
        else []
    )
    files = sorted(p for p in folder.rglob("*.txt") if p != class_file)
    boxes: dict[str, ImageBoxes] = {}
    used: set[int] = set()
    contents: list[bytes] = [class_file.read_bytes()] if class_file.is_file() else []
    for file in files:
        data = file.read_bytes()
        contents += [str(file.relative_to(folder)).encode(), data]
        rows: list[tuple[list[float], int, float | None]] = []
        text = decode_text(data, str(file))  # UTF-8, or UTF-16/32 with a byte-order mark
        for number, line in enumerate(text.splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            at = f"{file} line {number}"
            try:
                values = [float(v) for v in fields]
            except ValueError:
                raise ValueError(
                    f"{at} must be 'class cx cy w h [confidence]' (numbers), but got {line!r}"
                ) from None
            if (
                len(values) not in (5, 6)
                or not values[0].is_integer()
                or not 0 <= values[0] <= MAX_ID
            ):
                raise ValueError(
                    f"{at} must be 'class cx cy w h [confidence]' with a class number from 0 "
                    f"to {MAX_ID}, but got {line!r}"
                )
            cx, cy, w, h = values[1:5]
            if not all(0 <= v <= 1 for v in (cx, cy, w, h)):
                raise ValueError(
                    f"{at} must give cx cy w h relative to the image, in [0, 1], but got {line!r}"
                )
            class_id = int(values[0])
            used.add(class_id)
            score = values[5] if len(values) == 6 else None
            rows.append(([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], class_id, score))
        key = str(PurePosixPath(*file.relative_to(folder).with_suffix("").parts))
        boxes[key] = _image_boxes(rows, relative=True)
    if not files:
        raise ValueError(f"{folder} holds no YOLO .txt files")
    known = set(range(len(class_names))) | used
    return BoxFile(
        source=folder,
        kind="yolo",
        categories=[
            {"id": i, "name": class_names[i] if i < len(class_names) else str(i)}
            for i in sorted(known)
        ],
        boxes=boxes,
        sha256=_digest(contents),
    )


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
        image: _image_boxes(
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
        sha256=_digest(f.read_bytes() for f in files),
    )
