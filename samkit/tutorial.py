"""Settings and measurements the notebooks need, decided for the active model.

The notebooks never carry a flag of their own: the automatic mask generator's settings
follow ``samkit.default_model_type()`` (``SAMKIT_MODEL``), and prompt timings come from
one context manager.
"""

from __future__ import annotations

import inspect
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv
import torch
from segment_anything import SamAutomaticMaskGenerator

from samkit.env import COLAB_HOME, in_colab
from samkit.evaluation import SHAPES_AMG_SETTINGS
from samkit.images import check_rgb_image
from samkit.model import SAM_BUILDERS, default_model_type

#: The environment variable that chooses where notebooks write their files.
OUTPUT_DIR_ENV = "SAMKIT_OUTPUT_DIR"

#: The repository checkout samkit runs from (when it runs from one).
_REPO_ROOT = Path(__file__).resolve().parent.parent

_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

#: Parameters of ``SamAutomaticMaskGenerator`` that are not plain settings.
_NOT_SETTINGS = ("self", "model", "point_grids", "output_mode")


def sam_amg_defaults() -> dict[str, Any]:
    """The default settings of segment-anything's ``SamAutomaticMaskGenerator``.

    Read from the installed class's signature, so they are always the installed
    version's defaults.

    Returns:
        Parameter names mapped to their defaults (``points_per_side``,
        ``points_per_batch``, ``pred_iou_thresh``, ...), without ``model``,
        ``point_grids`` and ``output_mode``.
    """
    parameters = inspect.signature(SamAutomaticMaskGenerator.__init__).parameters
    return {
        name: parameter.default
        for name, parameter in parameters.items()
        if name not in _NOT_SETTINGS and parameter.default is not inspect.Parameter.empty
    }


def amg_settings(model_type: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The ``SamAutomaticMaskGenerator`` settings that suit a model, with your changes.

    Args:
        model_type: ``"vit_h"``, ``"vit_l"``, ``"vit_b"`` or ``"shapes"``; defaults to
            ``samkit.default_model_type()``.
        **overrides: Settings to change, by name (e.g. ``points_per_batch=16`` when the
            GPU runs out of memory, ``min_mask_region_area=100`` to drop small islands).

    Returns:
        A new dict of keyword arguments for ``SamAutomaticMaskGenerator(sam, **settings)``:
        segment-anything's defaults for the official models, and for ``"shapes"`` the
        same with ``samkit.evaluation.SHAPES_AMG_SETTINGS`` on top (a coarser grid of
        points, and thresholds that suit the small model); then ``overrides``.

    Raises:
        ValueError: If ``model_type`` is not a known model type, or an override is not a
            setting of ``SamAutomaticMaskGenerator``.

    Example:
        ```python
        generator = SamAutomaticMaskGenerator(sam, **samkit.amg_settings(points_per_batch=16))
        ```
    """
    chosen = default_model_type() if model_type is None else model_type
    if not isinstance(chosen, str) or chosen not in SAM_BUILDERS:
        valid = ", ".join(repr(name) for name in SAM_BUILDERS)
        raise ValueError(f"model_type must be one of {valid}, but got {chosen!r}")
    settings = sam_amg_defaults()
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)} is not a setting of SamAutomaticMaskGenerator; the "
            f"settings are {', '.join(settings)}"
        )
    if chosen == "shapes":
        settings.update(SHAPES_AMG_SETTINGS)
    settings.update(overrides)
    return settings


@dataclass
class Timing:
    """What :func:`stopwatch` measured.

    Attributes:
        label: What was timed.
        milliseconds: The wall-clock time in milliseconds (``nan`` while running).
    """

    label: str
    milliseconds: float = float("nan")

    def __str__(self) -> str:
        return f"{self.label}: {self.milliseconds:.1f} ms"


@contextmanager
def stopwatch(label: str, echo: bool = True) -> Iterator[Timing]:
    """Time a block of code in milliseconds, waiting for the GPU to finish its work.

    CUDA runs asynchronously, so the GPU is synchronised before the clock stops;
    otherwise ``set_image`` on a GPU would look instant.

    Args:
        label: What is being timed, printed before the time.
        echo: Print ``"<label>: 12.3 ms"`` when the block ends.

    Yields:
        A :class:`Timing` whose ``milliseconds`` is filled in when the block ends.

    Raises:
        ValueError: If ``label`` is not a string.

    Example:
        ```python
        with samkit.stopwatch("set_image"):
            predictor.set_image(image)
        ```
    """
    if not isinstance(label, str):
        raise ValueError(f"label must be a string, but got {type(label).__name__}")
    timing = Timing(label)
    _synchronize()
    start = time.perf_counter()
    yield timing
    _synchronize()
    timing.milliseconds = (time.perf_counter() - start) * 1000.0
    if echo:
        print(timing)


def _synchronize() -> None:
    """Wait for queued CUDA work, when there is a GPU."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def output_dir(name: str) -> Path:
    """The folder where a notebook writes its files (exported masks), created if missing.

    Notebooks never write into the repository's tracked files: the base folder is
    ``SAMKIT_OUTPUT_DIR`` when set (the tests and ``make demo`` set it), else
    ``/content/samkit_outputs`` in Colab, else ``build/outputs`` of the repository
    checkout (ignored by git), else ``samkit_outputs`` in the current folder.

    Args:
        name: The notebook's sub-folder, a plain folder name (letters, digits, ``_``,
            ``-``, ``.``).

    Returns:
        The folder ``<base>/<name>``, which exists.

    Raises:
        ValueError: If ``name`` is not a plain folder name.

    Example:
        ```python
        folder = samkit.output_dir("03_mascaras_automaticas")
        samkit.save_coco_rle(detections, folder / "masks.json")
        ```
    """
    if not isinstance(name, str) or not _FOLDER_NAME.match(name):
        raise ValueError(
            f"name must be a plain folder name (letters, digits, '_', '-', '.'), but got {name!r}"
        )
    chosen = os.environ.get(OUTPUT_DIR_ENV, "").strip()
    if chosen:
        base = Path(chosen).expanduser()
    elif in_colab():
        base = COLAB_HOME / "samkit_outputs"
    elif (_REPO_ROOT / "pyproject.toml").is_file():
        base = _REPO_ROOT / "build" / "outputs"
    else:
        base = Path.cwd() / "samkit_outputs"
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


#: Colours (RGB) of include and exclude clicks in :func:`draw_points`.
INCLUDE_COLOR = (40, 220, 60)
EXCLUDE_COLOR = (235, 40, 40)


def draw_points(
    image: npt.NDArray[np.uint8],
    point_coords: npt.ArrayLike,
    point_labels: npt.ArrayLike,
    radius: int | None = None,
) -> npt.NDArray[np.uint8]:
    """Draw clicks on a copy of an image: include clicks green, exclude clicks red.

    Args:
        image: An RGB uint8 image of shape `(H, W, 3)`, e.g. an annotated one.
        point_coords: `(N, 2)` pixel coordinates ``(x, y)``, as ``points_to_prompt`` gives.
        point_labels: `(N,)` labels, ``1`` include and ``0`` exclude.
        radius: The dot's radius in pixels; by default 1/60 of the image's longer side.

    Returns:
        A new RGB uint8 array with a dot (white rim) at every click; ``image`` is left
        untouched.

    Raises:
        ValueError: If ``image`` is not RGB uint8, the coordinates are not `(N, 2)`, the
            labels are not `(N,)` of 0 and 1, or ``radius`` is not a positive int.

    Example:
        ```python
        coords, labels = samkit.points_to_prompt([(120, 80)], exclude=[(40, 40)])
        samkit.draw_points(sample.image, coords, labels)
        ```
    """
    check_rgb_image(image)
    coords = np.asarray(point_coords, dtype=np.float64)
    labels = np.asarray(point_labels)
    if coords.ndim != 2 or coords.shape[1] != 2 or not np.isfinite(coords).all():
        raise ValueError(
            "point_coords must be finite (x, y) pairs of shape (N, 2), "
            f"but got shape {coords.shape}"
        )
    if labels.shape != (len(coords),) or not np.isin(labels, (0, 1)).all():
        raise ValueError(
            f"point_labels must be {len(coords)} labels of 0 (exclude) or 1 (include), "
            f"but got {labels.tolist()}"
        )
    if radius is None:
        radius = max(3, round(max(image.shape[:2]) / 60))
    elif isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise ValueError(f"radius must be a positive int or None, but got {radius!r}")
    out = image.copy()
    for (x, y), label in zip(coords, labels, strict=True):
        center = (round(float(x)), round(float(y)))
        color = INCLUDE_COLOR if label == 1 else EXCLUDE_COLOR
        cv2.circle(out, center, radius + max(1, radius // 3), (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, center, radius, color, -1, cv2.LINE_AA)
    return out


def draw_labels(
    image: npt.NDArray[np.uint8],
    detections: sv.Detections,
    labels: list[str] | None = None,
) -> npt.NDArray[np.uint8]:
    """Write each detection's label at its box's corner, with supervision's LabelAnnotator.

    Colours follow each row's index, as ``samkit.annotate`` colours masks and boxes, so
    a label has its box's colour.

    Args:
        image: An RGB uint8 image of shape `(H, W, 3)`, e.g. from ``samkit.annotate``.
        detections: ``sv.Detections`` with ``xyxy``.
        labels: One text per detection; by default ``data["class_name"]`` when the
            detections have it, else the row number.

    Returns:
        A new RGB uint8 array; ``image`` is left untouched.

    Raises:
        ValueError: If ``image`` is not RGB uint8, ``detections`` is not
            ``sv.Detections``, or ``labels`` does not have one string per detection.

    Example:
        ```python
        samkit.draw_labels(samkit.annotate(image, detections), detections)
        ```
    """
    check_rgb_image(image)
    if not isinstance(detections, sv.Detections):
        raise ValueError(f"detections must be sv.Detections, but got {type(detections).__name__}")
    if labels is None:
        names = detections.data.get("class_name")
        labels = [str(n) for n in names] if names is not None else []
        labels = labels or [str(i) for i in range(len(detections))]
    elif (
        not isinstance(labels, list | tuple)
        or len(labels) != len(detections)
        or not all(isinstance(text, str) for text in labels)
    ):
        raise ValueError(
            f"labels must be {len(detections)} strings, one per detection, but got {labels!r}"
        )
    if len(detections) == 0:
        return image.copy()
    annotator = sv.LabelAnnotator(color_lookup=sv.ColorLookup.INDEX, text_scale=0.6)
    # supervision draws in OpenCV's BGR order: flip in and back out, as samkit.annotate.
    scene = np.ascontiguousarray(image[:, :, ::-1])
    scene = annotator.annotate(scene=scene, detections=detections, labels=list(labels))
    return np.ascontiguousarray(np.asarray(scene)[:, :, ::-1])
