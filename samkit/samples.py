"""The tutorial's example images, suited to the active model.

With real SAM weights the notebooks work on three licence-clean photos bundled with
samkit (see ``data/CREDITS.md``). A model that only knows simple shapes (the bundled
``shapes`` model, whose registry record says ``samples="scenes"``) gets a generated
scene for every name instead, with its exact ground truth, so that the notebooks can
print how close each mask is to the truth (``samkit.mask_report``).

Example:
    ```python
    sample = samkit.sample_image("chelsea")
    predictor.set_image(sample.image)
    masks, scores, _ = predictor.predict(box=samkit.bboxes_to_xyxy([sample.default_box])[0])
    print(samkit.mask_report(masks[0], sample, score=scores[0]))
    ```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import supervision as sv

from samkit import files, locations
from samkit.checks import is_finite_number
from samkit.images import load_image
from samkit.masks import deepest_point
from samkit.model import default_model_type, model_spec
from samkit.shapes import make_scene

#: The size (height, width) of the generated scenes: not square, as most photos.
SCENE_SIZE: tuple[int, int] = (480, 640)

#: Scene padding: the default box of a scene sits this many pixels outside its shape,
#: as a box drawn by hand does.
_BOX_MARGIN = 4


@dataclass(frozen=True)
class _Photo:
    """A bundled photo and the prompts the notebooks use on it."""

    box: tuple[int, int, int, int]  # x, y, width, height
    label: str
    point: tuple[int, int]
    second_point: tuple[int, int]
    exclude_point: tuple[int, int]
    credit: str


@dataclass(frozen=True)
class _SceneChoice:
    """The generated scene standing in for a photo, and the shape the prompts aim at."""

    seed: int
    target: int


_PHOTOS: dict[str, _Photo] = {
    "chelsea": _Photo(
        box=(0, 0, 400, 300),
        label="gato",
        point=(170, 115),
        second_point=(250, 200),
        exclude_point=(425, 150),
        credit=(
            "La gata Chelsea. Foto: Stefan van der Walt, CC0 (datos de ejemplo de scikit-image)."
        ),
    ),
    "coffee": _Photo(
        box=(170, 15, 242, 292),
        label="taza",
        point=(300, 235),
        second_point=(195, 190),
        exclude_point=(120, 250),
        credit=(
            "Taza de café. Foto: Rachel Michetti, cortesía de Pikolo Espresso Bar, CC0 "
            "(datos de ejemplo de scikit-image)."
        ),
    ),
    "astronaut": _Photo(
        box=(20, 15, 345, 497),
        label="persona",
        point=(100, 380),
        second_point=(160, 300),
        exclude_point=(225, 110),
        credit=(
            "La astronauta Eileen Collins. Foto: NASA, dominio público (colección "
            "«NASA Great Images», https://flic.kr/p/r9qvLn, vía los datos de ejemplo de "
            "scikit-image)."
        ),
    ),
}

#: The scenes were picked among those the bundled model segments well (box-prompt IoU
#: of every shape >= 0.87): "chelsea" holds five shapes that the automatic generator
#: finds with near-duplicates and stray islands to clean up, "coffee" six well-separated
#: shapes for the box widget, and in "astronaut" the target polygon touches another one,
#: so one click on it is ambiguous (it, or both).
_SCENES: dict[str, _SceneChoice] = {
    "chelsea": _SceneChoice(seed=152, target=0),
    "coffee": _SceneChoice(seed=414, target=5),
    "astronaut": _SceneChoice(seed=279, target=0),
}

#: The name of each kind of shape in the samples' labels (Spanish, as the notebooks).
SHAPE_NAMES: dict[str, str] = {
    "rectangle": "rectángulo",
    "ellipse": "elipse",
    "triangle": "triángulo",
    "polygon": "polígono",
}

#: The names ``sample_image`` accepts.
SAMPLE_NAMES: tuple[str, ...] = tuple(_PHOTOS)


@dataclass(frozen=True)
class Sample:
    """An example image with the prompts the tutorial uses on it.

    Attributes:
        name: The name given to :func:`sample_image`.
        image: The RGB image, a uint8 numpy array of shape `(H, W, 3)`.
        ground_truth: The exact mask of every object, a bool numpy array of shape
            `(N, H, W)`, for a generated scene; ``None`` for a photo (nobody drew it).
        labels: The name of every object of ``ground_truth`` (the kind of shape, in
            Spanish: :data:`SHAPE_NAMES`), or an empty tuple for a photo.
        default_box: The box used when nobody drew one in the widget: a widget dict
            with keys ``x``, ``y``, ``width``, ``height`` and ``label``, in pixels.
        default_point: An ``(x, y)`` pixel inside the object of ``default_box``.
        include_points: Two ``(x, y)`` pixels inside that object, apart from each other
            (the first is ``default_point``), for several include clicks.
        exclude_point: An ``(x, y)`` pixel on something else nearby, for an exclude click.
        target: The row of ``ground_truth`` that ``default_box`` surrounds, or ``None``.
        boxes_file: A detector-style annotation file of boxes on this image (see
            :func:`load_boxes`), or ``None`` when there is none.
        credit: Who made the image and under which licence (Spanish, for the notebooks).
        source: Where the pixels come from: a file path, or the scene generator call.
    """

    name: str
    image: npt.NDArray[np.uint8]
    ground_truth: npt.NDArray[np.bool_] | None
    labels: tuple[str, ...]
    default_box: dict[str, int | str]
    default_point: tuple[int, int]
    include_points: tuple[tuple[int, int], ...]
    exclude_point: tuple[int, int]
    target: int | None
    boxes_file: Path | None
    credit: str
    source: str

    @property
    def is_scene(self) -> bool:
        """Whether this is a generated scene (with ground truth) rather than a photo."""
        return self.ground_truth is not None


def _check_name(name: object) -> str:
    """Return ``name`` if it is a known sample name, else raise listing the valid ones."""
    if not isinstance(name, str) or name not in _PHOTOS:
        valid = ", ".join(repr(n) for n in SAMPLE_NAMES)
        raise ValueError(f"sample name must be one of {valid}, but got {name!r}")
    return name


def _boxes_file(stem: str) -> Path | None:
    """The bundled annotation file ``annotations/<stem>.json`` if it exists."""
    try:
        return locations.data_file("annotations", f"{stem}.json")
    except FileNotFoundError:
        return None


def _point(xy: npt.NDArray[np.float32]) -> tuple[int, int]:
    return (int(xy[0]), int(xy[1]))


def _nearest_other(masks: npt.NDArray[np.bool_], target: int) -> int | None:
    """The shape closest to ``masks[target]`` (smallest gap in pixels), or ``None``."""
    import cv2

    others = [i for i in range(len(masks)) if i != target]
    if not others:
        return None
    outside = (~masks[target]).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    return min(others, key=lambda i: float(distance[masks[i]].min()))


def _second_point(mask: npt.NDArray[np.bool_], first: tuple[int, int]) -> tuple[int, int]:
    """A pixel well inside ``mask`` and away from ``first`` (``first`` if there is none).

    Among the pixels at least half as deep inside the shape as its deepest one, the one
    farthest from ``first``.
    """
    import cv2

    depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    ys, xs = np.nonzero(depth >= 0.5 * float(depth.max()))
    if len(xs) == 0:  # pragma: no cover - a shape always has a deepest pixel
        return first
    far = int(np.argmax((xs - first[0]) ** 2 + (ys - first[1]) ** 2))
    return (int(xs[far]), int(ys[far]))


def _scene_sample(name: str) -> Sample:
    """The generated scene that stands in for the photo ``name`` under the shapes model."""
    choice = _SCENES[name]
    height, width = SCENE_SIZE
    scene = make_scene(choice.seed, height=height, width=width)
    target = choice.target
    x0, y0, x1, y1 = (int(v) for v in scene.xyxy[target])
    x0, y0 = max(0, x0 - _BOX_MARGIN), max(0, y0 - _BOX_MARGIN)
    x1, y1 = min(width - 1, x1 + _BOX_MARGIN), min(height - 1, y1 + _BOX_MARGIN)
    neighbour = _nearest_other(scene.masks, target)
    first = _point(deepest_point(scene.masks[target]))
    if neighbour is None:  # pragma: no cover - every chosen scene holds several shapes
        exclude = (0, 0)
    else:
        exclude = _point(deepest_point(scene.masks[neighbour]))
    return Sample(
        name=name,
        image=scene.image,
        ground_truth=scene.masks,
        labels=tuple(SHAPE_NAMES[kind] for kind in scene.kinds),
        default_box={
            "x": x0,
            "y": y0,
            "width": x1 - x0,
            "height": y1 - y0,
            "label": SHAPE_NAMES[scene.kinds[target]],
        },
        default_point=first,
        include_points=(first, _second_point(scene.masks[target], first)),
        exclude_point=exclude,
        target=target,
        boxes_file=_boxes_file(f"{name}_shapes"),
        credit=(
            "Escena generada de figuras simples (samkit.shapes.make_scene), sin derechos "
            "reservados."
        ),
        source=f"samkit.shapes.make_scene(seed={choice.seed}, height={height}, width={width})",
    )


def _photo_sample(name: str) -> Sample:
    """The bundled photo ``name`` with its prompts."""
    photo = _PHOTOS[name]
    path = locations.data_file("images", f"{name}.png")
    x, y, width, height = photo.box
    return Sample(
        name=name,
        image=load_image(path),
        ground_truth=None,
        labels=(),
        default_box={"x": x, "y": y, "width": width, "height": height, "label": photo.label},
        default_point=photo.point,
        include_points=(photo.point, photo.second_point),
        exclude_point=photo.exclude_point,
        target=None,
        boxes_file=_boxes_file(name),
        credit=photo.credit,
        source=str(path),
    )


def sample_image(name: str = "chelsea", model_type: str | None = None) -> Sample:
    """Return one of the tutorial's example images, suited to the active model.

    Args:
        name: ``"chelsea"`` (a cat), ``"coffee"`` (a cup on a saucer) or
            ``"astronaut"`` (a portrait).
        model_type: The model the sample is for; defaults to
            ``samkit.default_model_type()``. For ``"shapes"`` (the bundled offline
            model, which only knows shapes) the name gives a generated scene of
            480x640 pixels with ground truth, the same one every time; for real SAM
            weights it gives the photo.

    Returns:
        The :class:`Sample`: the image, its ground truth when known, a default box and
        points, and its credit.

    Raises:
        ValueError: If ``name`` is not one of the names above, or ``model_type`` is not
            a model type.
        FileNotFoundError: If the bundled photo is missing (a broken install).

    Example:
        ```python
        sample = samkit.sample_image("coffee")
        widget = BBoxWidget(image=samkit.encode_image(sample.image))
        ```
    """
    name = _check_name(name)
    spec = model_spec(default_model_type() if model_type is None else model_type)
    if spec.samples == "scenes":
        return _scene_sample(name)
    return _photo_sample(name)


def _box_entry(entry: object, where: str) -> tuple[list[float], str, float]:
    """Validate one detection of an annotation file: its xyxy, label and score."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"{where} must be an object, but got {type(entry).__name__}")
    for key in ("xyxy", "label"):
        if key not in entry:
            raise ValueError(f"{where} is missing key '{key}'")
    xyxy = entry["xyxy"]
    if (
        not isinstance(xyxy, list)
        or len(xyxy) != 4
        or not all(isinstance(v, int | float) and is_finite_number(v) for v in xyxy)
    ):
        raise ValueError(f"{where} key 'xyxy' must be 4 numbers [x0, y0, x1, y1], but got {xyxy!r}")
    if xyxy[2] < xyxy[0] or xyxy[3] < xyxy[1]:
        raise ValueError(f"{where} key 'xyxy' must have x1 >= x0 and y1 >= y0, but got {xyxy!r}")
    label = entry["label"]
    if not isinstance(label, str) or not label:
        raise ValueError(f"{where} key 'label' must be a non-empty string, but got {label!r}")
    score = entry.get("score", 1.0)
    if not isinstance(score, int | float) or isinstance(score, bool) or not 0 <= score <= 1:
        raise ValueError(f"{where} key 'score' must be a number in [0, 1], but got {score!r}")
    return [float(v) for v in xyxy], label, float(score)


def load_boxes(path: str | os.PathLike[str]) -> sv.Detections:
    """Read a detector's boxes from an annotation file, as ``sv.Detections``.

    The file stands in for an object detector in the two-stage recipe (a detector finds
    boxes, SAM turns each box into a mask). It is JSON::

        {"image": "astronaut",
         "detections": [{"label": "persona", "score": 0.97, "xyxy": [20, 15, 365, 512]}]}

    Args:
        path: The JSON file (e.g. ``sample.boxes_file``).

    Returns:
        ``sv.Detections`` with ``xyxy`` `(N, 4)` float32, ``confidence`` `(N,)`,
        ``class_id`` `(N,)` (the index of the label in sorted order) and
        ``data["class_name"]`` `(N,)`, in the file's order; empty for no detections.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is not JSON of that form; the message names the entry
            and the key.

    Example:
        ```python
        boxes = samkit.load_boxes(sample.boxes_file)
        ```
    """
    if not isinstance(path, str | os.PathLike):
        raise ValueError(f"path must be a file path, but got {type(path).__name__}")
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"annotation file not found: {file}")
    content = files.read_json(file)  # UTF-8 or UTF-16/32 with a mark; no deep nesting
    if not isinstance(content, dict) or not isinstance(content.get("detections"), list):
        raise ValueError(f"{file} must hold an object with a 'detections' list")
    entries = [
        _box_entry(entry, f"{file.name} detection {i}")
        for i, entry in enumerate(content["detections"])
    ]
    labels = [label for _, label, _ in entries]
    classes = sorted(set(labels))
    return sv.Detections(
        xyxy=np.array([xyxy for xyxy, _, _ in entries], dtype=np.float32).reshape(-1, 4),
        confidence=np.array([score for _, _, score in entries], dtype=np.float32),
        class_id=np.array([classes.index(label) for label in labels], dtype=int),
        data={"class_name": np.array(labels, dtype=str)},
    )
