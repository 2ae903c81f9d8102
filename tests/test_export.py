from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from PIL import Image

import samkit
from samkit.export import COCO_RLE_FORMAT


def _masks(*pixels: tuple[int, int], shape: tuple[int, int] = (3, 4)) -> np.ndarray:
    """One mask per (row, col) pixel set to True, on a (H, W) canvas."""
    masks = np.zeros((len(pixels), *shape), dtype=bool)
    for i, (row, col) in enumerate(pixels):
        masks[i, row, col] = True
    return masks


def _random_masks(count: int, shape: tuple[int, int] = (37, 53), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *shape)) > 0.6


# ------------------------------------------------------------------ masks_to_rle / rle_to_masks


@pytest.mark.parametrize(
    ("masks", "expected"),
    [
        # no masks at all
        (np.zeros((0, 2, 3), bool), []),
        # a full 2x3 mask: 0 zeros, then 6 ones (COCO counts start with a run of zeros)
        (np.ones((1, 2, 3), bool), [{"size": [2, 3], "counts": "06"}]),
        # an empty mask: 6 zeros
        (np.zeros((1, 2, 3), bool), [{"size": [2, 3], "counts": "6"}]),
        # column-major order: pixel (row 1, col 2) of a 3x4 mask is the 8th, so 7 zeros,
        # 1 one, 4 zeros; the second mask is the first column
        (
            np.stack([_masks((1, 2))[0], np.pad(np.ones((3, 1), bool), ((0, 0), (0, 3)))]),
            [{"size": [3, 4], "counts": "714"}, {"size": [3, 4], "counts": "039"}],
        ),
        # 0/1 integers are accepted as masks
        (np.ones((1, 2, 3), np.uint8), [{"size": [2, 3], "counts": "06"}]),
    ],
)
def test_masks_to_rle(masks: np.ndarray, expected: list[dict[str, Any]]) -> None:
    assert samkit.export.masks_to_rle(masks) == expected


@pytest.mark.parametrize(
    "masks",
    [
        # one random mask
        _random_masks(1),
        # several random masks of an odd, non-square size
        _random_masks(5, shape=(41, 17), seed=3),
        # a mask that touches every border
        np.pad(np.zeros((8, 8), bool), 1, constant_values=True)[np.newaxis],
    ],
)
def test_rle_round_trip(masks: np.ndarray) -> None:
    decoded = samkit.export.rle_to_masks(samkit.export.masks_to_rle(masks))
    assert decoded.dtype == np.bool_
    np.testing.assert_array_equal(decoded, masks)


def test_rle_to_masks_of_nothing() -> None:
    # the empty list gives an empty stack
    assert samkit.export.rle_to_masks([]).shape == (0, 0, 0)


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        # a single 2D mask is not a stack of masks
        ("not an array", "expected sv.Detections with masks or a bool array"),
        # floats are not masks
        (np.ones((1, 2, 3), np.float32), "masks must be boolean"),
        # 4D is not (N, H, W)
        (np.ones((1, 1, 2, 3), bool), r"masks must have shape \(N, H, W\)"),
        # zero-sized images
        (np.ones((1, 0, 3), bool), r"masks must have shape \(N, H, W\) with H, W > 0"),
    ],
)
def test_masks_to_rle_rejects(masks: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.export.masks_to_rle(masks)


@pytest.mark.parametrize(
    ("rles", "message"),
    [
        # not a list
        ({"size": [2, 3], "counts": "06"}, "rles must be a list of RLE dicts, but got dict"),
        # a dict without counts
        ([{"size": [2, 3]}], "RLE 0 must be a dict with keys 'size' and 'counts'"),
        # a bad size
        ([{"size": [2], "counts": "06"}], r"RLE 0 key 'size' must be \[H, W\] with H, W > 0"),
        # uncompressed counts (a list) are not what save_coco_rle writes
        ([{"size": [2, 3], "counts": [0, 6]}], "RLE 0 key 'counts' must be a compressed"),
        # sizes that differ
        (
            [{"size": [2, 3], "counts": "06"}, {"size": [3, 2], "counts": "06"}],
            r"all RLEs must have the same size, but got \[\(2, 3\), \(3, 2\)\]",
        ),
    ],
)
def test_rle_to_masks_rejects(rles: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.export.rle_to_masks(rles)


# ------------------------------------------------------------------ save_coco_rle / load_coco_rle


def _detections(count: int, with_scores: bool = True, names: bool = True) -> sv.Detections:
    masks = _random_masks(count, seed=count)
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32).reshape(-1, 4),
        mask=masks,
        confidence=np.linspace(0.9, 0.5, count).astype(np.float32) if with_scores else None,
        data={"class_name": np.array([f"thing{i}" for i in range(count)])} if names else {},
    )


@pytest.mark.parametrize(
    ("detections", "has_scores", "has_names"),
    [
        # no detections: an empty file that reads back as empty detections
        (_detections(0), False, False),
        # one detection with a score and a class name
        (_detections(1), True, True),
        # several detections without scores or names
        (_detections(4, with_scores=False, names=False), False, False),
        # a plain bool array of masks
        (_random_masks(3, seed=9), False, False),
    ],
)
def test_coco_rle_round_trip(
    tmp_path: Path, detections: Any, has_scores: bool, has_names: bool
) -> None:
    path = samkit.save_coco_rle(detections, tmp_path / "masks.json", image_name="scene.png")
    masks = detections.mask if isinstance(detections, sv.Detections) else detections
    restored = samkit.load_coco_rle(path)
    assert restored.mask is not None
    assert restored.mask.shape == masks.shape
    np.testing.assert_array_equal(restored.mask, masks)
    np.testing.assert_array_equal(restored.xyxy, sv.mask_to_xyxy(masks).reshape(-1, 4))
    if has_scores:
        np.testing.assert_allclose(restored.confidence, detections.confidence)
    else:
        assert restored.confidence is None
    if has_names:
        assert restored.data["class_name"].tolist() == detections.data["class_name"].tolist()
    else:
        assert "class_name" not in restored.data


def test_coco_rle_file_content(tmp_path: Path) -> None:
    # one pixel at (row 1, col 2) of a 3x4 image, with a score and a class name
    detections = sv.Detections(
        xyxy=np.array([[2, 1, 2, 1]], np.float32),
        mask=_masks((1, 2)),
        confidence=np.array([0.75], np.float32),
        data={"class_name": np.array(["dot"])},
    )
    path = samkit.save_coco_rle(detections, tmp_path / "one.json", image_name="dot.png")
    assert json.loads(path.read_text()) == {
        "format": COCO_RLE_FORMAT,
        "image": {"file_name": "dot.png", "height": 3, "width": 4},
        "annotations": [
            {
                "id": 0,
                "segmentation": {"size": [3, 4], "counts": "714"},
                "area": 1,
                "bbox": [2, 1, 1, 1],
                "score": 0.75,
                "class_name": "dot",
            }
        ],
    }
    # written through a temporary file that is gone once renamed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json"]


def test_save_coco_rle_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "masks.json"
    samkit.save_coco_rle(_random_masks(3), path)
    samkit.save_coco_rle(_random_masks(1), path)
    assert len(samkit.load_coco_rle(path)) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # a suffix other than .json
        ({"path": "masks.txt"}, ValueError, r"path must end in \.json, but got 'masks\.txt'"),
        # not a path
        ({"path": 3}, ValueError, "path must be a file path, but got 3"),
        # an image name that is not a string
        ({"image_name": 5}, ValueError, "image_name must be a string or None, but got 5"),
        # a folder that does not exist
        ({"path": "missing/masks.json"}, FileNotFoundError, "folder not found"),
        # detections without masks
        (
            {"detections": sv.Detections(xyxy=np.zeros((1, 4), np.float32))},
            ValueError,
            "detections have no masks",
        ),
    ],
)
def test_save_coco_rle_rejects(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"detections": _random_masks(1), "path": "masks.json"}
    arguments.update(kwargs)
    if isinstance(arguments["path"], str):
        arguments["path"] = tmp_path / arguments["path"]
    with pytest.raises(error, match=message):
        samkit.save_coco_rle(**arguments)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # not JSON at all
        ("{not json", "is not a JSON file"),
        # JSON from another tool
        ('{"annotations": []}', "must be written by samkit.save_coco_rle"),
        # the right format, but no annotations list
        (json.dumps({"format": COCO_RLE_FORMAT, "image": {}}), "must hold an 'image' object"),
        # an annotation without its segmentation
        (
            json.dumps({"format": COCO_RLE_FORMAT, "image": {}, "annotations": [{"id": 0}]}),
            "annotation 0 is missing key 'segmentation'",
        ),
        # counts that are not a valid RLE
        (
            json.dumps(
                {
                    "format": COCO_RLE_FORMAT,
                    "image": {},
                    "annotations": [{"segmentation": {"size": [2, 3], "counts": "0;"}}],
                }
            ),
            "cannot decode RLE counts",
        ),
    ],
)
def test_load_coco_rle_rejects(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "masks.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        samkit.load_coco_rle(path)


def test_load_coco_rle_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="COCO RLE file not found"):
        samkit.load_coco_rle(tmp_path / "nothing.json")


# ------------------------------------------------------------------ PNG masks


@pytest.mark.parametrize(
    ("count", "prefix"),
    [
        # no masks: nothing written
        (0, "mask"),
        # one mask
        (1, "mask"),
        # several masks, a prefix with a dot and a dash
        (3, "coffee.v2-final"),
    ],
)
def test_mask_pngs_round_trip(tmp_path: Path, count: int, prefix: str) -> None:
    detections = _detections(count)
    folder = tmp_path / "nested" / "png"
    paths = samkit.save_mask_pngs(detections, folder, prefix=prefix)
    assert [p.name for p in paths] == [f"{prefix}_{i:03d}.png" for i in range(count)]
    assert sorted(folder.iterdir()) == sorted(paths)
    for path, mask in zip(paths, detections.mask, strict=True):
        with Image.open(path) as picture:
            assert picture.mode == "L"
            assert set(np.unique(np.asarray(picture)).tolist()) <= {0, 255}
        np.testing.assert_array_equal(samkit.export.load_mask_png(path), mask)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        # empty
        ("", "prefix must start with a letter or digit"),
        # a path separator would write elsewhere
        ("../up", "prefix must start with a letter or digit"),
        # spaces are not allowed
        ("my mask", "but got 'my mask'"),
    ],
)
def test_save_mask_pngs_rejects_prefix(tmp_path: Path, prefix: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.save_mask_pngs(_random_masks(1), tmp_path / "png", prefix=prefix)
    assert not (tmp_path / "png").exists()


def test_save_mask_pngs_rejects_a_file_as_folder(tmp_path: Path) -> None:
    file = tmp_path / "taken"
    file.write_text("x")
    with pytest.raises(ValueError, match=r"folder must be a folder, but .* is a file"):
        samkit.save_mask_pngs(_random_masks(1), file)


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        # no such file
        ("missing.png", None, FileNotFoundError, "PNG mask not found"),
        # a text file with a .png name
        ("fake.png", b"not a png", ValueError, "cannot read .* as a PNG image"),
        # another suffix
        ("mask.jpg", b"", ValueError, r"path must end in \.png"),
    ],
)
def test_load_mask_png_rejects(
    tmp_path: Path, name: str, content: bytes | None, error: type[Exception], message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        samkit.export.load_mask_png(path)
