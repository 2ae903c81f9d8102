"""Reading a folder of YOLO txt files: ``class cx cy w h [confidence]`` per line.

One txt file per image (``cam1/0001.txt`` for ``cam1/0001.jpg``), coordinates relative
to the image's size; class names come from ``classes.txt`` in the folder when there is
one.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from samkit.box_records import MAX_ID, BoxFile, ImageBoxes, Row, digest, image_boxes
from samkit.files import decode_text

__all__ = ["YOLO_CLASSES_FILE", "read_yolo_folder"]


#: The file in a YOLO folder that names the classes, one per line (line i is class i).
YOLO_CLASSES_FILE = "classes.txt"


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
        rows = _read_rows(file, data)
        used.update(class_id for _, class_id, _ in rows)
        key = str(PurePosixPath(*file.relative_to(folder).with_suffix("").parts))
        boxes[key] = image_boxes(rows, relative=True)
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
        sha256=digest(contents),
    )


def _read_rows(file: Path, data: bytes) -> list[Row]:
    """The boxes of one YOLO txt file, as xyxy relative to the image's size."""
    rows: list[Row] = []
    text = decode_text(data, str(file))  # UTF-8, or UTF-16/32 with a byte-order mark
    for number, line in enumerate(text.splitlines(), start=1):
        if line.split():
            rows.append(_read_line(line, f"{file} line {number}"))
    return rows


def _read_line(line: str, at: str) -> Row:
    """One line ``class cx cy w h [confidence]`` as ``(xyxy, class, score)``."""
    try:
        values = [float(v) for v in line.split()]
    except ValueError:
        raise ValueError(
            f"{at} must be 'class cx cy w h [confidence]' (numbers), but got {line!r}"
        ) from None
    if len(values) not in (5, 6) or not values[0].is_integer() or not 0 <= values[0] <= MAX_ID:
        raise ValueError(
            f"{at} must be 'class cx cy w h [confidence]' with a class number from 0 to {MAX_ID}, "
            f"but got {line!r}"
        )
    cx, cy, w, h = values[1:5]
    if not all(0 <= v <= 1 for v in (cx, cy, w, h)):
        raise ValueError(
            f"{at} must give cx cy w h relative to the image, in [0, 1], but got {line!r}"
        )
    score = values[5] if len(values) == 6 else None
    return ([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], int(values[0]), score)
