from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from PIL import Image

import samkit
from samkit import formats
from samkit.masks import mask_iou


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def _scene_masks() -> np.ndarray:
    """The exact masks of a generated scene: shapes that touch and hide each other."""
    sample = samkit.sample_image("chelsea", model_type="shapes")
    assert sample.ground_truth is not None
    return sample.ground_truth


def _ring(shape: tuple[int, int] = (40, 50)) -> np.ndarray:
    """A square with a square hole."""
    mask = np.zeros(shape, dtype=bool)
    mask[5:35, 10:40] = True
    mask[15:25, 20:30] = False
    return mask


def _two_pieces(shape: tuple[int, int] = (40, 50)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[2:10, 2:10] = True
    mask[20:30, 30:45] = True
    return mask


@pytest.fixture(scope="module")
def bundled_masks() -> np.ndarray:
    """The three masks the bundled model predicts for a box on a scene (stock predictor)."""
    from segment_anything import SamPredictor

    sample = samkit.sample_image("coffee", model_type="shapes")
    predictor = SamPredictor(samkit.load_sam("shapes", device="cpu"))
    predictor.set_image(sample.image)
    box = samkit.bboxes_to_xyxy([sample.default_box])[0]
    masks, _, _ = predictor.predict(box=box, multimask_output=True)
    return np.asarray(masks)


# ------------------------------------------------------------------ polygons


def test_polygons_read_back_into_the_scene_masks() -> None:
    masks = _scene_masks()
    polygons = formats.masks_to_polygons(masks)
    assert len(polygons) == len(masks)
    assert all(p.dtype == np.int32 and p.shape[1] == 2 for outline in polygons for p in outline)
    restored = formats.polygons_to_masks(polygons, masks.shape[1:])
    assert restored.shape == masks.shape and restored.dtype == bool
    assert mask_iou(restored, masks).diagonal().min() >= 0.98


@pytest.mark.slow
def test_polygons_read_back_into_sam_masks(bundled_masks: np.ndarray) -> None:
    # what SAM predicts: outlines that follow the pixels, not drawn shapes
    masks = bundled_masks[bundled_masks.reshape(len(bundled_masks), -1).any(axis=1)]
    assert len(masks) > 0
    restored = formats.polygons_to_masks(formats.masks_to_polygons(masks), masks.shape[1:])
    assert mask_iou(restored, masks).diagonal().min() >= 0.98


@pytest.mark.parametrize(
    ("masks", "counts"),
    [
        # no masks: no polygons
        (np.zeros((0, 40, 50), bool), []),
        # an empty mask: no outline
        (np.zeros((1, 40, 50), bool), [0]),
        # two separate pieces: two outlines
        (_two_pieces()[None], [2]),
        # one (H, W) mask is one mask; its hole is outlined too, as supervision does
        (_ring(), [2]),
        # detections carry their masks
        (sv.Detections(xyxy=np.zeros((1, 4)), mask=_two_pieces()[None]), [2]),
    ],
)
def test_masks_to_polygons_counts(masks: Any, counts: list[int]) -> None:
    assert [len(outline) for outline in formats.masks_to_polygons(masks)] == counts


def test_polygons_fill_holes() -> None:
    ring = _ring()
    [restored] = formats.polygons_to_masks(formats.masks_to_polygons(ring), ring.shape)
    assert restored[20, 25] and restored.sum() == 30 * 30


@pytest.mark.parametrize(
    ("polygons", "shape", "message"),
    [
        # a size that is not (H, W)
        ([[]], (40,), "image_shape must be (H, W) with H, W > 0, but got (40,)"),
        ([[]], (0, 5), "image_shape must be (H, W) with H, W > 0, but got (0, 5)"),
        # two points are no polygon
        (
            [[np.array([[1, 1], [4, 4]])]],
            (10, 10),
            "polygon 0 of mask 0 must have shape (K, 2) with K >= 3, but got shape (2, 2)",
        ),
    ],
)
def test_polygons_to_masks_refuses(polygons: Any, shape: Any, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        formats.polygons_to_masks(polygons, shape)


def test_polygons_to_masks_of_nothing() -> None:
    assert formats.polygons_to_masks([], (4, 5)).shape == (0, 4, 5)


# ------------------------------------------------------------------ YOLO


def test_yolo_labels_read_back_into_the_same_masks(tmp_path: Path) -> None:
    masks = _scene_masks()
    path = formats.save_yolo_labels(masks, tmp_path / "scene.txt", class_ids=list(range(5)))
    assert path == tmp_path / "scene.txt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.txt"]  # no temporary left
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [int(line.split()[0]) for line in lines] == list(range(len(masks)))
    values = [float(v) for line in lines for v in line.split()[1:]]
    assert all(0.0 <= v <= 1.0 for v in values)
    restored = formats.read_yolo_labels(path, masks.shape[1:])
    assert restored.mask is not None and restored.mask.shape == masks.shape
    assert restored.class_id.tolist() == list(range(len(masks)))
    assert mask_iou(restored.mask, masks).diagonal().min() >= 0.98


def test_yolo_labels_read_back_into_sam_masks(bundled_masks: np.ndarray, tmp_path: Path) -> None:
    masks = bundled_masks[bundled_masks.reshape(len(bundled_masks), -1).any(axis=1)]
    formats.save_yolo_labels(masks, tmp_path / "sam.txt")
    restored = formats.read_yolo_labels(tmp_path / "sam.txt", masks.shape[1:])
    assert restored.mask is not None and len(restored) >= len(masks)
    # a mask in several pieces comes back as several rows: compare the unions
    assert mask_iou(restored.mask.any(axis=0)[None], masks.any(axis=0)[None])[0, 0] >= 0.98


def test_yolo_keeps_holes_and_writes_one_line_per_piece(tmp_path: Path) -> None:
    masks = np.stack([_ring(), _two_pieces()])
    lines = formats.masks_to_yolo_lines(masks, class_ids=[3, 7])
    assert [line.split()[0] for line in lines] == ["3", "7", "7"]
    formats.save_yolo_labels(masks, tmp_path / "x.txt", class_ids=[3, 7])
    restored = formats.read_yolo_labels(tmp_path / "x.txt", (40, 50, 3))
    assert restored.mask is not None
    # the ring keeps its hole
    assert mask_iou(restored.mask[:1], masks[:1])[0, 0] >= 0.98
    assert not restored.mask[0][20, 25]
    # the two pieces come back as two rows whose union is the mask
    union = restored.mask[1] | restored.mask[2]
    assert mask_iou(union[None], masks[1:])[0, 0] >= 0.98


def test_yolo_on_a_ragged_mask(tmp_path: Path) -> None:
    # noise: supervision finds no seam for its holes; the outlines are written, holes
    # filled, and read back over the mask's pieces
    mask = np.random.default_rng(0).random((60, 80)) > 0.5
    mask[10:40, 10:50] = True  # one solid piece among the noise
    lines = formats.masks_to_yolo_lines(mask, class_ids=2)
    assert lines and all(line.split()[0] == "2" for line in lines)
    formats.save_yolo_labels(mask, tmp_path / "ragged.txt")
    restored = formats.read_yolo_labels(tmp_path / "ragged.txt", mask.shape)
    assert restored.mask is not None
    union = restored.mask.any(axis=0)
    assert union[10:40, 10:50].all()
    # every mask pixel in a piece with an outline is covered
    assert (union & mask).sum() / mask.sum() >= 0.5


@pytest.mark.parametrize(
    ("class_ids", "expected"),
    [
        # default: the detections' class_id
        (None, ["4", "2"]),
        # one number for every mask
        (1, ["1", "1"]),
        # one per mask
        ([0, 9], ["0", "9"]),
    ],
)
def test_yolo_class_ids(class_ids: Any, expected: list[str]) -> None:
    masks = _scene_masks()[:2]
    detections = sv.Detections(xyxy=sv.mask_to_xyxy(masks), mask=masks, class_id=np.array([4, 2]))
    lines = formats.masks_to_yolo_lines(detections, class_ids=class_ids)
    assert [line.split()[0] for line in lines] == expected


def test_yolo_class_zero_without_class_ids() -> None:
    lines = formats.masks_to_yolo_lines(_scene_masks()[:2])
    assert [line.split()[0] for line in lines] == ["0", "0"]


@pytest.mark.parametrize(
    "class_ids",
    [
        # one too few
        [1],
        # not whole numbers
        [0.5, 1.0],
        # negative
        -1,
    ],
)
def test_yolo_refuses_bad_class_ids(class_ids: Any) -> None:
    with pytest.raises(ValueError, match=r"^class_ids must be one whole number from 0 up"):
        formats.masks_to_yolo_lines(_scene_masks()[:2], class_ids=class_ids)


def test_yolo_with_no_masks(tmp_path: Path) -> None:
    # the empty input: an empty file, read back as no detections of the image's size
    path = formats.save_yolo_labels(np.zeros((0, 6, 7), bool), tmp_path / "none.txt")
    assert path.read_text(encoding="utf-8") == ""
    restored = formats.read_yolo_labels(path, (6, 7))
    assert len(restored) == 0 and restored.mask is not None and restored.mask.shape == (0, 6, 7)


def test_read_yolo_box_lines(tmp_path: Path) -> None:
    # a detector's box line becomes a box-shaped mask
    path = tmp_path / "box.txt"
    path.write_text("2 0.5 0.5 0.5 0.5\n", encoding="utf-8")
    restored = formats.read_yolo_labels(path, (20, 40))
    assert restored.class_id.tolist() == [2]
    assert restored.xyxy.tolist() == [[10.0, 5.0, 30.0, 15.0]]
    assert restored.mask is not None and restored.mask[0, 10, 20] and not restored.mask[0, 2, 2]


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        # not a label file
        ("labels.json", ValueError, "path must end in .txt, but got 'labels.json'"),
        # no file there
        ("missing.txt", FileNotFoundError, "no YOLO label file at {tmp}/missing.txt"),
    ],
)
def test_read_yolo_labels_refuses(tmp_path: Path, path: str, error: type, message: str) -> None:
    with pytest.raises(error, match=exactly(message.format(tmp=tmp_path))):
        formats.read_yolo_labels(tmp_path / path, (10, 10))


def test_save_yolo_labels_refuses_other_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=exactly("path must end in .txt, but got 'a.csv'")):
        formats.save_yolo_labels(_scene_masks(), tmp_path / "a.csv")


# ------------------------------------------------------------------ cut-outs


def test_cutout_is_the_object_on_transparency(tmp_path: Path) -> None:
    sample = samkit.sample_image("coffee", model_type="shapes")
    assert sample.ground_truth is not None and sample.target is not None
    mask = sample.ground_truth[sample.target]
    path = formats.save_cutout(sample.image, mask, tmp_path / "cutout.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cutout.png"]
    with Image.open(path) as opened:
        assert opened.mode == "RGBA"
        rgba = np.asarray(opened)
    x0, y0, x1, y1 = (int(v) for v in sv.mask_to_xyxy(mask[None])[0])
    assert rgba.shape == (y1 - y0 + 1, x1 - x0 + 1, 4)
    crop = mask[y0 : y1 + 1, x0 : x1 + 1]
    assert np.array_equal(rgba[..., 3] == 255, crop)
    assert (rgba[..., 3][~crop] == 0).all()
    assert np.array_equal(rgba[..., :3][crop], sample.image[y0 : y1 + 1, x0 : x1 + 1][crop])


def test_cutout_uncropped_keeps_the_image_size(tmp_path: Path) -> None:
    image = np.full((6, 8, 3), 200, np.uint8)
    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    path = formats.save_cutout(image, mask[None], tmp_path / "full.png", crop=False)
    with Image.open(path) as opened:
        rgba = np.asarray(opened)
    assert rgba.shape == (6, 8, 4)
    assert np.array_equal(rgba[..., 3] > 0, mask)


@pytest.mark.parametrize(
    ("image", "mask", "name", "message"),
    [
        # a mask of another size
        (
            np.zeros((4, 5, 3), np.uint8),
            np.ones((5, 4), bool),
            "a.png",
            "mask must be one mask of the image's size (4, 5), but got shape (5, 4)",
        ),
        # several masks
        (
            np.zeros((4, 5, 3), np.uint8),
            np.ones((2, 4, 5), bool),
            "a.png",
            "mask must be one mask of the image's size (4, 5), but got shape (2, 4, 5)",
        ),
        # a float image
        (
            np.zeros((4, 5, 3), np.float32),
            np.ones((4, 5), bool),
            "a.png",
            "image must be an RGB uint8 array of shape (H, W, 3), but got float32 (4, 5, 3)",
        ),
        # an RGBA image
        (
            np.zeros((4, 5, 4), np.uint8),
            np.ones((4, 5), bool),
            "a.png",
            "image must be an RGB uint8 array of shape (H, W, 3), but got shape (4, 5, 4)",
        ),
        # not a PNG: JPEG has no transparency
        (
            np.zeros((4, 5, 3), np.uint8),
            np.ones((4, 5), bool),
            "a.jpg",
            "path must end in .png, but got 'a.jpg'",
        ),
    ],
)
def test_cutout_refuses(
    tmp_path: Path, image: np.ndarray, mask: np.ndarray, name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        formats.save_cutout(image, mask, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_cutout_of_an_empty_mask_is_all_transparent(tmp_path: Path) -> None:
    path = formats.save_cutout(
        np.full((4, 5, 3), 9, np.uint8), np.zeros((4, 5), bool), tmp_path / "e.png"
    )
    with Image.open(path) as opened:
        rgba = np.asarray(opened)
    assert rgba.shape == (4, 5, 4) and (rgba[..., 3] == 0).all()


def test_cutout_into_a_missing_folder(tmp_path: Path) -> None:
    image = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(FileNotFoundError):
        formats.save_cutout(image, np.ones((4, 5), bool), tmp_path / "no" / "a.png")
