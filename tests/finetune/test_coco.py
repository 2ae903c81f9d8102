from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from pycocotools.coco import COCO

from samkit.finetune.coco import KNOWN_SEED_OFFSET, add_to_coco, ring_dataset
from samkit.finetune.data import load_dataset
from samkit.rings import make_ring_scene
from samkit.shapes import make_scene


def test_ring_dataset_is_exact_and_pycocotools_reads_it(tmp_path: Path) -> None:
    path = ring_dataset(tmp_path / "d", count=4, seed=10, height=96, width=128, known=0.5)
    coco = COCO(str(path))
    assert len(coco.getImgIds()) == 4
    dataset = load_dataset(path)
    names = [image.file_name for image in dataset.images]
    assert names == ["images/anillos_00010.png", "images/figuras_00011.png",
                     "images/anillos_00012.png", "images/figuras_00013.png"]  # fmt: skip
    np.testing.assert_array_equal(dataset.images[0].masks(), make_ring_scene(10, 96, 128).masks)
    known = make_scene(KNOWN_SEED_OFFSET + 11, 96, 128)
    np.testing.assert_array_equal(dataset.images[1].masks(), known.masks)


def test_add_to_coco_creates_appends_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "labels" / "annotations.json"
    a, b = make_ring_scene(1, 96, 128), make_ring_scene(2, 96, 128)
    add_to_coco(path, a.image, a.masks, "a.png")
    detections = sv.Detections(xyxy=b.xyxy, mask=b.masks)
    add_to_coco(path, b.image, detections, "b.png")  # sv.Detections work too
    add_to_coco(path, a.image, a.masks[:1], "a.png")  # labeled again: replaced, not added
    content = json.loads(path.read_text())
    assert [e["file_name"] for e in content["images"]] == ["images/b.png", "images/a.png"]
    counts = [
        sum(x["image_id"] == e["id"] for x in content["annotations"]) for e in content["images"]
    ]
    assert counts == [len(b), 1]
    assert len({x["id"] for x in content["annotations"]}) == len(content["annotations"])
    assert (tmp_path / "labels" / "images" / "a.png").is_file()
    np.testing.assert_array_equal(load_dataset(path).images[1].masks(), a.masks[:1])


@pytest.mark.parametrize(
    ("image", "masks", "name", "message"),
    [
        (np.zeros((8, 8), np.uint8), np.ones((1, 8, 8), bool), "a.png",
         r"image must be an RGB uint8 np.ndarray of shape \(H, W, 3\)"),
        (np.zeros((8, 8, 3), np.uint8), np.ones((1, 4, 4), bool), "a.png",
         r"masks must be at least one mask of the image's size \(8, 8\), but got shape "
         r"\(1, 4, 4\)"),
        (np.zeros((8, 8, 3), np.uint8), np.zeros((0, 8, 8), bool), "a.png",
         r"masks must be at least one mask of the image's size"),  # empty
        (np.zeros((8, 8, 3), np.uint8), np.ones((1, 8, 8), bool), "../a.png",
         r"file_name must be a .png file name of letters, digits, '_', '-' and '.', but got "
         r"'../a.png'"),
        (np.zeros((8, 8, 3), np.uint8), np.ones((1, 8, 8), bool), "a.jpg",
         r"file_name must be a .png file name"),
    ],
)  # fmt: skip
def test_add_to_coco_refuses(tmp_path: Path, image, masks, name: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        add_to_coco(tmp_path / "annotations.json", image, masks, name)
    assert not (tmp_path / "annotations.json").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, r"count must be an int >= 1, but got 0"),
        ({"seed": -1}, r"seed must be an int >= 0, but got -1"),
        ({"known": 1.0}, r"known must be a number in \[0, 1\), but got 1.0"),
    ],
)
def test_ring_dataset_refuses(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ring_dataset(tmp_path, **kwargs)  # type: ignore[arg-type]
