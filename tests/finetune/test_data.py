from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from samkit.finetune.data import load_dataset, split_images
from samkit.rings import make_ring_scene


def _copy(ring_coco: Path, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path / "data"
    shutil.copytree(ring_coco.parent, folder)
    target = folder / "annotations.json"
    return target, json.loads(target.read_text())


def _write(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(json.dumps(content))
    return path


def test_reads_the_generated_data_set_exactly(ring_coco: Path) -> None:
    dataset = load_dataset(ring_coco)
    assert len(dataset.images) == 6 and dataset.unlabeled == ()
    for i, image in enumerate(dataset.images):
        scene = make_ring_scene(500 + i, 192, 256)
        assert (image.height, image.width) == (192, 256)
        np.testing.assert_array_equal(image.masks(), scene.masks)
        np.testing.assert_array_equal(image.boxes(), scene.xyxy)
    assert dataset.objects == sum(len(make_ring_scene(500 + i, 192, 256)) for i in range(6))
    assert len(dataset.digest) == 64 and load_dataset(ring_coco).digest == dataset.digest


def _as_polygons(content: dict[str, Any]) -> None:
    # a filled square polygon of the same size (the hole-free outline COCO tools write)
    for annotation in content["annotations"]:
        x, y, w, h = annotation["bbox"]
        annotation["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]


def _as_uncompressed_rle(content: dict[str, Any]) -> None:
    scene = make_ring_scene(500, 192, 256)
    first = [a for a in content["annotations"] if a["image_id"] == 1]
    for annotation, mask in zip(first, scene.masks, strict=True):
        rle = annotation["segmentation"]
        flat = mask.astype(np.int8).flatten(order="F")
        edges = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
        counts = ([0] if flat[0] else []) + np.diff(edges).tolist()  # runs start with 0s
        annotation["segmentation"] = {"size": rle["size"], "counts": counts}


@pytest.mark.parametrize("convert", [_as_polygons, _as_uncompressed_rle])
def test_reads_polygons_and_uncompressed_rle(
    ring_coco: Path, tmp_path: Path, convert: Callable[[dict[str, Any]], None]
) -> None:
    path, content = _copy(ring_coco, tmp_path)
    convert(content)
    dataset = load_dataset(_write(path, content))
    masks = dataset.images[0].masks()
    assert masks.shape == (len(dataset.images[0].rles), 192, 256) and masks.any(axis=(1, 2)).all()
    if convert is _as_uncompressed_rle:
        np.testing.assert_array_equal(masks, make_ring_scene(500, 192, 256).masks)


def test_an_image_without_annotations_is_left_out(ring_coco: Path, tmp_path: Path) -> None:
    path, content = _copy(ring_coco, tmp_path)
    content["annotations"] = [a for a in content["annotations"] if a["image_id"] != 2]
    dataset = load_dataset(_write(path, content))
    assert len(dataset.images) == 5 and dataset.unlabeled == ("images/anillos_00501.png",)


def _missing_image(path: Path, content: dict[str, Any]) -> None:
    (path.parent / content["images"][1]["file_name"]).unlink()


def _unreadable_image(path: Path, content: dict[str, Any]) -> None:
    (path.parent / content["images"][1]["file_name"]).write_text("not an image")


def _wrong_mask_size(path: Path, content: dict[str, Any]) -> None:
    mask = np.zeros((100, 120), dtype=np.uint8, order="F")
    mask[10:20, 10:20] = 1
    rle = coco_mask.encode(mask)
    content["annotations"][0]["segmentation"] = {
        "size": [100, 120],
        "counts": rle["counts"].decode(),
    }


def _no_mask(path: Path, content: dict[str, Any]) -> None:
    del content["annotations"][2]["segmentation"]


def _empty_mask(path: Path, content: dict[str, Any]) -> None:
    rle = coco_mask.encode(np.zeros((192, 256), dtype=np.uint8, order="F"))
    content["annotations"][0]["segmentation"] = {
        "size": [192, 256],
        "counts": rle["counts"].decode(),
    }


def _one_image(path: Path, content: dict[str, Any]) -> None:
    content["annotations"] = [a for a in content["annotations"] if a["image_id"] == 1]


def _no_images(path: Path, content: dict[str, Any]) -> None:
    content["images"], content["annotations"] = [], []


def _wrong_declared_size(path: Path, content: dict[str, Any]) -> None:
    content["images"][0]["height"] = 300


def _unknown_image_id(path: Path, content: dict[str, Any]) -> None:
    content["annotations"][0]["image_id"] = 99


def _not_coco(path: Path, content: dict[str, Any]) -> None:
    content.pop("images")


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        # an image file that is not there
        (_missing_image, FileNotFoundError, r"image 'images/anillos_00501.png' not found: no "),
        # a file that is no image
        (_unreadable_image, ValueError, r"image 'images/anillos_00501.png' cannot be read: "),
        # a mask whose size is not its image's
        (_wrong_mask_size, ValueError, r"annotation 1 of image 'images/anillos_00500.png'.*"
         r"its mask is 100x120 \(height x width\), but the image is 192x256"),
        # an annotation with a box and no mask
        (_no_mask, ValueError, r"annotation 3 of image .* has no mask \(its 'segmentation' is "
         r"missing or empty\): fine-tuning needs a mask for every annotation, not only a box"),
        # a mask with no pixel set
        (_empty_mask, ValueError, r"annotation 1 of image .* has an empty mask"),
        # one image: nothing left to validate on
        (_one_image, ValueError, r"fine-tuning needs at least 2 images with masks \(some to train "
         r"on, at least one to validate on\), but annotations.json has 1"),
        # empty
        (_no_images, ValueError, r"at least 2 images with masks .* but annotations.json has 0"),
        # the COCO file's size disagrees with the file's
        (_wrong_declared_size, ValueError, r"image 'images/anillos_00500.png' is 192x256 "
         r"\(height x width\), but the COCO file says 300x256"),
        # an annotation of an image that is not listed
        (_unknown_image_id, ValueError, r"annotation 0 must have the 'image_id' of an entry of "
         r"'images', but got 99"),
        # not a COCO instance file
        (_not_coco, ValueError, r"must be a COCO instance file with 'images' and 'annotations' "
         r"lists, but got \['annotations', 'categories'\]"),
    ],
)  # fmt: skip
def test_bad_data_is_refused_with_what_was_expected(
    ring_coco: Path,
    tmp_path: Path,
    change: Callable[[Path, dict[str, Any]], None],
    error: type[Exception],
    message: str,
) -> None:
    path, content = _copy(ring_coco, tmp_path)
    change(path, content)
    with pytest.raises(error, match=message):
        load_dataset(_write(path, content))


def test_missing_files_and_folders(ring_coco: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="annotation file not found: "):
        load_dataset(tmp_path / "nothing.json")
    with pytest.raises(FileNotFoundError, match="images folder not found: "):
        load_dataset(ring_coco, tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="must be a COCO JSON file, but it is not JSON"):
        load_dataset(tmp_path / "bad.json")


@pytest.mark.parametrize(
    ("count", "fraction", "val_count"),
    [
        (2, 0.2, 1),  # the fewest: one of each
        (5, 0.2, 1),
        (10, 0.2, 2),
        (10, 0.5, 5),
        (3, 0.9, 2),  # at least one image is left to train on
        (40, 0.2, 8),
    ],
)
def test_split_by_image(count: int, fraction: float, val_count: int) -> None:
    train, val = split_images(count, fraction, seed=3)
    assert len(val) == val_count and sorted(train + val) == list(range(count))
    assert split_images(count, fraction, seed=3) == (train, val)


def test_split_depends_on_the_seed() -> None:
    assert len({tuple(split_images(40, 0.2, seed)[1]) for seed in range(5)}) == 5


@pytest.mark.parametrize(
    ("count", "fraction", "message"),
    [
        (1, 0.2, r"a validation split needs at least 2 images, but got 1"),
        (0, 0.2, r"needs at least 2 images, but got 0"),  # empty
        (10, 0.0, r"val_fraction must be a number in \(0, 1\), but got 0.0"),
        (10, 1.0, r"val_fraction must be a number in \(0, 1\), but got 1.0"),
        (10, "0.2", r"val_fraction must be a number in \(0, 1\), but got '0.2'"),
    ],
)
def test_split_refuses(count: int, fraction: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_images(count, fraction, seed=0)
