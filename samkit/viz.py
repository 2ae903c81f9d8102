"""Drawing SAM's masks: annotated images, side-by-side figures and grids of masks.

Figures are built with ``matplotlib.figure.Figure`` directly, never through pyplot, so
they work on any backend (Agg included), never pile up in pyplot's registry, and show
exactly once when a notebook cell returns them.
"""

from __future__ import annotations

import io
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import supervision as sv
from matplotlib.figure import Figure

from samkit import files
from samkit.checks import rgb_image as check_rgb_image
from samkit.masks import grid_shape, mask_iou, stack_masks

#: What an empty grid or heatmap says (the figures are shown in the Spanish notebooks).
NO_MASKS_TEXT = "ninguna máscara para mostrar"


class NotebookFigure(Figure):
    """A matplotlib ``Figure`` that a notebook shows as a PNG when a cell returns it.

    A figure made without pyplot has no inline display of its own unless
    ``%matplotlib inline`` ran; ``_repr_png_`` gives Jupyter and Colab the image anyway.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def save_figure(figure: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Save a figure atomically: to a temporary file beside ``path``, then renamed.

    Args:
        figure: The figure to save.
        path: Where to write it; the format comes from the suffix (``.png``, ``.pdf``,
            ``.svg``, ``.jpg``). The folder must exist.
        dpi: Resolution of raster formats.

    Returns:
        The path written, as a ``Path``.

    Raises:
        ValueError: If the suffix names no format matplotlib can write.
        FileNotFoundError: If the folder does not exist.

    Example:
        ```python
        samkit.viz.save_figure(samkit.mask_grid(detections), "build/masks.png")
        ```
    """
    target = Path(path)
    file_format = target.suffix.lower().lstrip(".")
    supported = figure.canvas.get_supported_filetypes()
    if file_format not in supported:
        raise ValueError(
            f"cannot save a figure as {target.name!r}: the suffix must be one of "
            + ", ".join(f".{ext}" for ext in sorted(supported))
        )
    with files.atomic_writer(target) as file:
        figure.savefig(file, format=file_format, dpi=dpi, bbox_inches="tight")
    return target


def annotate(
    image: npt.NDArray[np.uint8],
    detections: sv.Detections | None = None,
    masks: bool = True,
    boxes: bool = True,
    opacity: float = 0.5,
    *,
    labels: bool | list[str] = False,
    points: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> npt.NDArray[np.uint8]:
    """Draw detections (and clicks) on a copy of an RGB image with supervision's annotators.

    Colours follow each row's index (``sv.ColorLookup.INDEX``), because SAM's masks have
    no ``class_id`` to colour by.

    Args:
        image: The RGB uint8 image of shape `(H, W, 3)` the detections belong to.
        detections: ``sv.Detections``, e.g. from :func:`amg_to_detections`; ``None``
            draws only the ``points``.
        masks: Fill every mask (when the detections have masks).
        boxes: Draw every box.
        opacity: How opaque the mask fill is, in `[0, 1]`.
        labels: ``True`` writes each detection's ``class_name`` (or row number) at its
            box, a list gives the texts (see :func:`draw_labels`).
        points: ``(point_coords, point_labels)`` as ``samkit.points_to_prompt`` gives:
            include clicks are drawn green, exclude clicks red (see :func:`draw_points`).

    Returns:
        A new RGB uint8 array of shape `(H, W, 3)`; ``image`` is left untouched.

    Raises:
        ValueError: If ``image`` is not RGB uint8, ``detections`` is not
            ``sv.Detections``, its masks are not the image's size, or ``opacity`` is not
            in `[0, 1]`.

    Example:
        ```python
        annotated = samkit.annotate(image, samkit.amg_to_detections(results))
        clicked = samkit.annotate(image, points=samkit.points_to_prompt([(120, 80)]))
        ```
    """
    check_rgb_image(image)
    if detections is None:
        detections = sv.Detections.empty()
    if not isinstance(detections, sv.Detections):
        raise ValueError(f"detections must be sv.Detections, but got {type(detections).__name__}")
    if not isinstance(opacity, numbers.Real) or isinstance(opacity, bool) or not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be a number in [0, 1], but got {opacity!r}")
    if (
        detections.mask is not None
        and len(detections)
        and detections.mask.shape[1:] != image.shape[:2]
    ):
        raise ValueError(
            f"detections' masks are {tuple(detections.mask.shape[1:])} (H, W), but the image "
            f"is {image.shape[:2]}: annotate the image the masks were made from"
        )
    # supervision draws its palette in OpenCV's BGR order: flip in and back out.
    scene = np.ascontiguousarray(image[:, :, ::-1])
    if masks and detections.mask is not None:
        mask_annotator = sv.MaskAnnotator(color_lookup=sv.ColorLookup.INDEX, opacity=opacity)
        scene = mask_annotator.annotate(scene=scene, detections=detections)
    if boxes and len(detections):
        box_annotator = sv.BoxAnnotator(color_lookup=sv.ColorLookup.INDEX)
        scene = box_annotator.annotate(scene=scene, detections=detections)
    out = np.ascontiguousarray(np.asarray(scene)[:, :, ::-1])
    if labels is not False:
        out = draw_labels(out, detections, None if labels is True else labels)
    if points is not None:
        if not isinstance(points, tuple | list) or len(points) != 2:
            raise ValueError(
                "points must be (point_coords, point_labels), as samkit.points_to_prompt "
                f"gives, but got {type(points).__name__}"
            )
        out = draw_points(out, points[0], points[1])
    return out


def _finish(figure: Figure, save_to: str | os.PathLike[str] | None) -> Figure:
    """Save the figure when asked, and return it."""
    if save_to is not None:
        save_figure(figure, save_to)
    return figure


def side_by_side(
    original: npt.NDArray[np.uint8],
    annotated: npt.NDArray[np.uint8],
    titles: Sequence[str] = ("original", "segmented"),
    size: tuple[float, float] = (12.0, 6.0),
    save_to: str | os.PathLike[str] | None = None,
) -> Figure:
    """Show the original image and the annotated one next to each other.

    Args:
        original: The RGB uint8 image `(H, W, 3)`.
        annotated: The annotated RGB uint8 image, e.g. from :func:`annotate`.
        titles: The two titles, left then right.
        size: The figure's width and height in inches.
        save_to: Also save the figure there (atomically), e.g. ``"build/result.png"``.

    Returns:
        A matplotlib ``Figure`` with two axes (shown when a notebook cell returns it).

    Raises:
        ValueError: If an image is not RGB uint8 `(H, W, 3)` or ``titles`` is not two
            strings.

    Example:
        ```python
        samkit.side_by_side(image, samkit.annotate(image, detections))
        ```
    """
    images = [check_rgb_image(original, "original"), check_rgb_image(annotated, "annotated")]
    if isinstance(titles, str) or len(titles) != 2:
        raise ValueError(f"titles must be two strings (left, right), but got {titles!r}")
    figure = NotebookFigure(figsize=size)
    for axes, picture, title in zip(figure.subplots(1, 2), images, titles, strict=True):
        axes.imshow(picture)
        axes.set_title(str(title))
        axes.axis("off")
    return _finish(figure, save_to)


def mask_grid(
    masks_or_detections: sv.Detections | npt.NDArray[Any] | Sequence[npt.NDArray[Any]],
    titles: Sequence[str] | None = None,
    max_cols: int = 8,
    cell_size: float = 2.0,
    save_to: str | os.PathLike[str] | None = None,
    iou: bool = False,
) -> Figure:
    """Show every mask in its own cell of a grid (any count: 0, 1, 7, 100...), or their IoUs.

    Args:
        masks_or_detections: ``sv.Detections`` with masks, an array `(N, H, W)`, or a
            list of `(H, W)` masks.
        titles: One title per mask; default ``"#i: A px"`` (index and area).
        max_cols: The widest the grid may be (see :func:`grid_shape`).
        cell_size: Width and height of one cell in inches.
        save_to: Also save the figure there (atomically).
        iou: Draw instead the IoU of every pair of masks as a heatmap `(N, N)`: row and
            column ``i`` are mask ``#i`` of the grid, the values (0 to 1) are written in
            the cells when there are at most 15 masks. Near-duplicates show as bright
            cells off the diagonal.

    Returns:
        A matplotlib ``Figure`` with one axes per mask (unused cells removed), or with
        the heatmap and its colour bar; with no masks, a small figure that says so and
        has no axes.

    Raises:
        ValueError: As :func:`stack_masks` and :func:`grid_shape`, or if ``titles`` does
            not have one entry per mask.

    Example:
        ```python
        samkit.mask_grid(samkit.masks.sort_by_area(detections, descending=False))
        ```
    """
    masks = stack_masks(masks_or_detections)
    rows, cols = grid_shape(len(masks), max_cols=max_cols)
    if titles is None:
        titles = [f"#{i}: {int(mask.sum())} px" for i, mask in enumerate(masks)]
    elif isinstance(titles, str) or len(titles) != len(masks):
        raise ValueError(
            f"titles must have one entry per mask: {len(masks)} masks, but got {titles!r}"
        )
    if len(masks) == 0:
        figure = NotebookFigure(figsize=(cell_size * 2, cell_size / 2))
        figure.text(0.5, 0.5, NO_MASKS_TEXT, ha="center", va="center")
        return _finish(figure, save_to)
    if iou:
        return _finish(_iou_heatmap(masks, cell_size), save_to)
    figure = NotebookFigure(figsize=(cell_size * cols, cell_size * rows))
    grid = figure.subplots(rows, cols, squeeze=False)
    for index, axes in enumerate(grid.flat):
        if index >= len(masks):
            axes.remove()
            continue
        axes.imshow(masks[index], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes.set_title(str(titles[index]), fontsize="small")
        axes.axis("off")
    return _finish(figure, save_to)


#: The most masks whose IoU values are written in the heatmap's cells.
_MAX_WRITTEN = 15


def _iou_heatmap(masks: npt.NDArray[np.bool_], cell_size: float) -> Figure:
    """The pairwise IoU of ``masks`` `(N, H, W)` as a heatmap figure, N above 0."""
    values = np.asarray(mask_iou(masks, masks), dtype=np.float64)
    count = len(masks)
    side = max(3.0, min(10.0, 0.45 * count + 2.0)) * cell_size / 2.0
    figure = NotebookFigure(figsize=(side * 1.2, side))
    axes = figure.subplots()
    image = axes.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    names = [f"#{i}" for i in range(count)]
    step = max(1, count // 20)
    axes.set_xticks(range(0, count, step), names[::step], rotation=90, fontsize="small")
    axes.set_yticks(range(0, count, step), names[::step], fontsize="small")
    axes.set_title("IoU entre máscaras")
    if count <= _MAX_WRITTEN:
        for (row, col), value in np.ndenumerate(values):
            colour = "black" if value > 0.6 else "white"
            axes.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    return figure


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
        samkit.viz.draw_points(sample.image, coords, labels)
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
        samkit.viz.draw_labels(samkit.annotate(image, detections), detections)
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
