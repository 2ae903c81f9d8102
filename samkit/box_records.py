"""What a box file holds, whatever its kind: boxes per image, categories, a digest.

:func:`samkit.boxes.read_box_file` reads COCO JSON, YOLO txt folders and samkit boxes
JSON into one :class:`BoxFile`; :meth:`BoxFile.assign` finds each image's boxes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_ID", "BoxFile", "ImageBoxes", "Row", "digest", "image_boxes"]

#: The largest category id or class number a box file may give (COCO's ids are 32-bit
#: in practice; a larger one would overflow the int64 arrays boxes are kept in).
MAX_ID = 2**31 - 1

#: One box as a reader collects it: ``([x0, y0, x1, y1], category id, score or None)``.
Row = tuple[list[float], int, float | None]


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


def image_boxes(rows: list[Row], relative: bool) -> ImageBoxes:
    """The :class:`ImageBoxes` of one image from its rows ``(xyxy, category id, score)``."""
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


def digest(parts: Iterable[bytes]) -> str:
    """One sha256 of many contents (each hashed first, so their bounds count)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()
