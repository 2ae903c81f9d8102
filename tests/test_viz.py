from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
import supervision as sv
from matplotlib.figure import Figure
from PIL import Image

import samkit
from samkit import viz

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def test_agg_backend() -> None:
    assert matplotlib.get_backend().lower() == "agg"


def square_detections(height: int = 20, width: int = 30) -> sv.Detections:
    masks = np.zeros((2, height, width), dtype=bool)
    masks[0, 2:8, 3:10] = True
    masks[1, 12:18, 15:25] = True
    return samkit.prediction_to_detections(masks, np.array([0.9, 0.8], dtype=np.float32))


def test_annotate_paints_masks_and_leaves_the_rest() -> None:
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    detections = square_detections()
    annotated = samkit.annotate(image, detections, boxes=False)
    assert annotated.shape == image.shape and annotated.dtype == np.uint8
    assert (image == 100).all()  # the input is untouched
    assert (annotated[detections.mask[0]] != 100).any(axis=1).all()
    assert (annotated[detections.mask[1]] != 100).any(axis=1).all()
    background = ~detections.mask.any(axis=0)
    assert (annotated[background] == 100).all()
    # index colours: the two masks get different colours
    assert not np.array_equal(annotated[4, 5], annotated[15, 20])


def test_annotate_keeps_rgb_order() -> None:
    """supervision draws in BGR; the result must show its palette colour as RGB."""
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    annotated = samkit.annotate(image, square_detections(), boxes=False, opacity=1.0)
    expected = sv.ColorPalette.DEFAULT.by_idx(0).as_rgb()
    assert tuple(annotated[4, 5]) == expected


def test_annotate_boxes_only() -> None:
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    detections = square_detections()
    annotated = samkit.annotate(image, detections, masks=False)
    changed = (annotated != 100).any(axis=2)
    assert changed[2, 3:10].all()  # the top edge of box 0
    assert not changed[5, 6]  # the inside of box 0 is not filled


@pytest.mark.parametrize(
    "detections",
    [
        # the empty case: nothing drawn
        samkit.amg_to_detections([]),
        # empty detections from supervision itself
        sv.Detections.empty(),
    ],
)
def test_annotate_nothing(detections: sv.Detections) -> None:
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    np.testing.assert_array_equal(samkit.annotate(image, detections), image)


def test_annotate_real_amg_output(shapes_image: np.ndarray, amg_detections: sv.Detections) -> None:
    # class-less detections: ColorLookup.INDEX, never "Could not resolve color by class"
    assert amg_detections.class_id is None
    annotated = samkit.annotate(shapes_image, amg_detections)
    assert annotated.shape == shapes_image.shape
    assert (annotated != shapes_image).any()


@pytest.mark.parametrize(
    ("image", "detections", "kwargs", "message"),
    [
        # a BGR float image
        (
            np.zeros((20, 30, 3), np.float32),
            square_detections(),
            {},
            "image must be an RGB uint8 np.ndarray of shape (H, W, 3), "
            "but got dtype float32 and shape (20, 30, 3)",
        ),
        # the raw generator output instead of detections
        (
            np.zeros((20, 30, 3), np.uint8),
            [],
            {},
            "detections must be sv.Detections, but got list",
        ),
        # masks of another image
        (
            np.zeros((10, 30, 3), np.uint8),
            square_detections(),
            {},
            "detections' masks are (20, 30) (H, W), but the image is (10, 30): "
            "annotate the image the masks were made from",
        ),
        # opacity out of range
        (
            np.zeros((20, 30, 3), np.uint8),
            square_detections(),
            {"opacity": 2},
            "opacity must be a number in [0, 1], but got 2",
        ),
    ],
)
def test_annotate_bad_input(image: Any, detections: Any, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.annotate(image, detections, **kwargs)


def image_arrays(figure: Figure) -> list[np.ndarray]:
    return [np.asarray(axes.images[0].get_array()) for axes in figure.axes if axes.images]


def test_side_by_side() -> None:
    original = np.zeros((20, 30, 3), dtype=np.uint8)
    annotated = samkit.annotate(original, square_detections())
    figure = samkit.side_by_side(original, annotated, titles=("before", "after"))
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 2
    assert [axes.get_title() for axes in figure.axes] == ["before", "after"]
    shown = image_arrays(figure)
    np.testing.assert_array_equal(shown[0], original)
    np.testing.assert_array_equal(shown[1], annotated)


def test_side_by_side_shows_in_a_notebook() -> None:
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    png = samkit.side_by_side(image, image)._repr_png_()  # type: ignore[attr-defined]
    assert png.startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("original", "annotated", "titles", "message"),
    [
        # a grayscale annotated image
        (
            np.zeros((4, 4, 3), np.uint8),
            np.zeros((4, 4), np.uint8),
            ("a", "b"),
            "annotated must be an RGB uint8 np.ndarray of shape (H, W, 3), "
            "but got dtype uint8 and shape (4, 4)",
        ),
        # a path instead of an array
        (
            "photo.jpg",
            np.zeros((4, 4, 3), np.uint8),
            ("a", "b"),
            "original must be an RGB uint8 np.ndarray of shape (H, W, 3), but got str",
        ),
        # one title
        (
            np.zeros((4, 4, 3), np.uint8),
            np.zeros((4, 4, 3), np.uint8),
            "ab",
            "titles must be two strings (left, right), but got 'ab'",
        ),
    ],
)
def test_side_by_side_bad_input(original: Any, annotated: Any, titles: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.side_by_side(original, annotated, titles=titles)


def masks_of(count: int) -> np.ndarray:
    masks = np.zeros((count, 10, 12), dtype=bool)  # 120 px: room for 100 areas
    for index in range(count):
        masks[index].flat[: index + 1] = True
    return masks


@pytest.mark.slow
@pytest.mark.parametrize(
    ("count", "max_cols", "grid"),
    [
        # no masks: a figure that says so, no axes
        (0, 8, (0, 0)),
        # one
        (1, 8, (1, 1)),
        # seven: the classic (8, len/8) grid crashes here
        (7, 8, (1, 7)),
        # seven in rows of three: two unused cells removed
        (7, 3, (3, 3)),
        # a hundred
        (100, 8, (13, 8)),
    ],
)
def test_mask_grid_any_count(count: int, max_cols: int, grid: tuple[int, int]) -> None:
    masks = masks_of(count)
    figure = samkit.mask_grid(masks, max_cols=max_cols)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == count
    if count:
        assert figure.axes[0].get_subplotspec().get_gridspec().get_geometry() == grid
        for shown, mask in zip(image_arrays(figure), masks, strict=True):
            np.testing.assert_array_equal(shown, mask)
        assert figure.axes[-1].get_title() == f"#{count - 1}: {count} px"
    else:
        assert [text.get_text() for text in figure.texts] == ["ninguna máscara para mostrar"]
    assert figure._repr_png_().startswith(PNG_SIGNATURE)  # type: ignore[attr-defined]


def test_mask_grid_real_amg_output_smallest_first(amg_detections: sv.Detections) -> None:
    ordered = samkit.masks.sort_by_area(amg_detections, descending=False)
    figure = samkit.mask_grid(ordered, titles=[str(i) for i in range(len(ordered))])
    assert len(figure.axes) == len(amg_detections)
    assert figure.axes[0].get_title() == "0"
    areas = [int(shown.sum()) for shown in image_arrays(figure)]
    assert areas == sorted(areas)


def test_mask_grid_empty_detections() -> None:
    assert len(samkit.mask_grid(samkit.amg_to_detections([])).axes) == 0


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        # too few titles
        (
            masks_of(3),
            {"titles": ["a"]},
            "titles must have one entry per mask: 3 masks, but got ['a']",
        ),
        # detections without masks
        (
            sv.Detections(xyxy=np.zeros((1, 4))),
            {},
            "detections have no masks (detections.mask is None); "
            "build them with amg_to_detections or prediction_to_detections",
        ),
        # zero columns
        (masks_of(3), {"max_cols": 0}, "max_cols must be an integer >= 1, but got 0"),
    ],
)
def test_mask_grid_bad_input(value: Any, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        samkit.mask_grid(value, **kwargs)


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_save_to(tmp_path: Path, suffix: str) -> None:
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    target = tmp_path / f"figure{suffix}"
    samkit.side_by_side(image, image, save_to=target)
    assert target.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary left
    if suffix == ".png":
        with Image.open(target) as saved:
            assert saved.format == "PNG"


def test_mask_grid_save_to(tmp_path: Path) -> None:
    samkit.mask_grid(masks_of(7), save_to=tmp_path / "grid.png")
    assert (tmp_path / "grid.png").read_bytes().startswith(PNG_SIGNATURE)


def test_save_replaces_an_old_file(tmp_path: Path) -> None:
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")
    samkit.viz.save_figure(samkit.mask_grid(masks_of(1)), target)
    assert target.read_bytes().startswith(PNG_SIGNATURE)


def test_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figure = samkit.mask_grid(masks_of(2))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        samkit.viz.save_figure(figure, tmp_path / "grid.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        # an unknown format
        (
            "grid.docx",
            ValueError,
            "cannot save a figure as 'grid.docx': the suffix must be one of {formats}",
        ),
        # a folder that does not exist
        ("missing/grid.png", FileNotFoundError, "folder not found: {tmp}/missing"),
    ],
)
def test_save_figure_bad_input(
    tmp_path: Path, name: str, error: type[Exception], message: str
) -> None:
    figure = samkit.mask_grid(masks_of(1))
    formats = ", ".join(f".{ext}" for ext in sorted(figure.canvas.get_supported_filetypes()))
    with pytest.raises(error, match=exactly(message.format(formats=formats, tmp=tmp_path))):
        samkit.viz.save_figure(figure, tmp_path / name)


def test_figure_png_is_readable() -> None:
    figure = samkit.mask_grid(masks_of(3))
    with Image.open(io.BytesIO(figure._repr_png_())) as shown:  # type: ignore[attr-defined]
        assert shown.size[0] > shown.size[1]  # three cells in a row: wider than tall


# ------------------------------------------------------------------ draw_points


def test_draw_points() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    out = samkit.viz.draw_points(image, [[10, 20], [60, 40]], [1, 0], radius=6)
    # a copy: the input stays black
    assert not image.any()
    assert tuple(out[20, 10]) == viz.INCLUDE_COLOR
    assert tuple(out[40, 60]) == viz.EXCLUDE_COLOR
    # a white rim around the dot (radius 6, rim to 8; anti-aliased, so nearly white)
    assert (out[20, 10 + 7] > 200).all()
    # nothing far from the clicks
    assert not out[:5, 70:].any()


def test_draw_points_without_points() -> None:
    image = np.full((10, 10, 3), 7, np.uint8)
    out = samkit.viz.draw_points(image, np.zeros((0, 2)), np.zeros((0,), int))
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(
    ("coords", "labels", "kwargs", "message"),
    [
        # one coordinate instead of a pair
        ([[1]], [1], {}, r"point_coords must be finite \(x, y\) pairs of shape \(N, 2\)"),
        # NaN
        ([[1, float("nan")]], [1], {}, "point_coords must be finite"),
        # a label other than 0 and 1
        ([[1, 1]], [2], {}, r"point_labels must be 1 labels of 0 \(exclude\) or 1 \(include\)"),
        # fewer labels than points
        ([[1, 1], [2, 2]], [1], {}, "point_labels must be 2 labels"),
        # a radius of zero
        ([[1, 1]], [1], {"radius": 0}, "radius must be a positive int or None, but got 0"),
    ],
)
def test_draw_points_rejects(
    coords: Any, labels: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.viz.draw_points(np.zeros((5, 5, 3), np.uint8), coords, labels, **kwargs)


def test_draw_points_rejects_a_non_image() -> None:
    with pytest.raises(ValueError, match=r"image must be an RGB uint8 np\.ndarray"):
        samkit.viz.draw_points(np.zeros((5, 5), np.uint8), [[1, 1]], [1])


# ------------------------------------------------------------------ draw_labels


def _boxes(names: list[str] | None) -> sv.Detections:
    count = 2 if names is None else len(names)
    data = {} if names is None else {"class_name": np.array(names, dtype=str)}
    xyxy = np.array([[10, 30, 60, 50], [40, 60, 90, 90]], np.float32)[:count]
    return sv.Detections(xyxy=xyxy.reshape(-1, 4), data=data)


@pytest.mark.parametrize(
    ("detections", "labels"),
    [
        # the detections' class names
        (_boxes(["cup", "spoon"]), None),
        # row numbers when there are no class names
        (_boxes(None), None),
        # labels given
        (_boxes(["cup", "spoon"]), ["a", "b"]),
    ],
)
def test_draw_labels_draws_at_each_box(detections: sv.Detections, labels: Any) -> None:
    image = np.zeros((100, 180, 3), np.uint8)
    out = samkit.viz.draw_labels(image, detections, labels)
    assert not image.any()
    for x0, y0, _, _ in detections.xyxy.astype(int):
        # the label sits just above the box's top-left corner
        assert out[max(0, y0 - 12) : y0, x0 : x0 + 20].any()
    # nowhere near the boxes, nothing is drawn
    assert not out[:, 150:].any()


def test_draw_labels_without_detections() -> None:
    image = np.full((20, 20, 3), 5, np.uint8)
    out = samkit.viz.draw_labels(image, _boxes([]))
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(
    ("detections", "labels", "message"),
    [
        # not detections
        (np.zeros((1, 4)), None, "detections must be sv.Detections, but got ndarray"),
        # one label for two boxes
        (_boxes(None), ["a"], r"labels must be 2 strings, one per detection, but got \['a'\]"),
        # labels that are not strings
        (_boxes(None), [1, 2], "labels must be 2 strings"),
    ],
)
def test_draw_labels_rejects(detections: Any, labels: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.viz.draw_labels(np.zeros((100, 120, 3), np.uint8), detections, labels)


@pytest.mark.parametrize("count", [0, 1, 3, 16])  # empty; one; written values; too many to write
def test_mask_grid_iou_heatmap(count: int) -> None:
    masks = masks_of(count)
    figure = samkit.mask_grid(masks, iou=True)
    if count == 0:
        assert [text.get_text() for text in figure.texts] == ["ninguna máscara para mostrar"]
        assert figure.axes == []
        return
    heatmap, _colour_bar = figure.axes
    [shown] = heatmap.get_images()
    np.testing.assert_allclose(
        shown.get_array(), samkit.masks.mask_iou(masks, masks), rtol=0, atol=1e-6
    )
    assert heatmap.get_title() == "IoU entre máscaras"
    written = [text.get_text() for text in heatmap.texts]
    assert written == ([] if count > 15 else [f"{v:.2f}" for v in shown.get_array().ravel()])
    assert figure._repr_png_().startswith(PNG_SIGNATURE)  # type: ignore[attr-defined]


def test_mask_grid_iou_of_two_overlapping_masks() -> None:
    # a 2-pixel mask inside a 3-pixel one: IoU 2 / 3 off the diagonal, 1 on it
    first = np.array([[1, 1], [0, 0]], dtype=bool)
    second = np.array([[1, 1], [1, 0]], dtype=bool)
    figure = samkit.mask_grid([first, second], iou=True)
    values = figure.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(values, [[1.0, 2 / 3], [2 / 3, 1.0]])
