from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from PIL import Image

import samkit
from samkit import locations
from samkit.samples import SCENE_SIZE

ROOT = Path(__file__).resolve().parent.parent

#: Every sample name, with the size of its photo (height, width).
PHOTO_SIZES = {"chelsea": (300, 451), "coffee": (400, 600), "astronaut": (512, 512)}


def _xyxy(box: dict[str, Any]) -> tuple[float, float, float, float]:
    return (box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"])


# ------------------------------------------------------------------ sample_image


def test_sample_names() -> None:
    # the names are the bundled photos, in the documented order
    assert samkit.samples.SAMPLE_NAMES == ("chelsea", "coffee", "astronaut")


@pytest.mark.parametrize("name", list(PHOTO_SIZES))
def test_photo_sample(name: str) -> None:
    sample = samkit.sample_image(name, model_type="vit_b")
    height, width = PHOTO_SIZES[name]
    assert sample.name == name
    assert sample.image.shape == (height, width, 3)
    assert sample.image.dtype == np.uint8
    with Image.open(locations.data_dir() / "images" / f"{name}.png") as photo:
        np.testing.assert_array_equal(sample.image, np.asarray(photo.convert("RGB")))
    assert sample.ground_truth is None
    assert not sample.is_scene
    assert sample.labels == ()
    assert sample.target is None
    x0, y0, x1, y1 = _xyxy(sample.default_box)
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    assert isinstance(sample.default_box["label"], str) and sample.default_box["label"]
    for x, y in (sample.default_point, sample.exclude_point):
        assert 0 <= x < width and 0 <= y < height
    assert x0 <= sample.default_point[0] <= x1 and y0 <= sample.default_point[1] <= y1
    # several include clicks: the default one first, then another inside the box
    first, second = sample.include_points
    assert first == sample.default_point and second != first
    assert 0 <= second[0] < width and 0 <= second[1] < height
    assert x0 <= second[0] <= x1 and y0 <= second[1] <= y1
    assert re.search(r"CC0|dominio público", sample.credit)
    assert sample.source.endswith(f"{name}.png")


@pytest.mark.parametrize("name", list(PHOTO_SIZES))
def test_scene_sample(name: str) -> None:
    sample = samkit.sample_image(name, model_type="shapes")
    assert sample.image.shape == (*SCENE_SIZE, 3)
    assert sample.image.dtype == np.uint8
    assert sample.is_scene
    truth = sample.ground_truth
    assert truth is not None and truth.dtype == np.bool_
    assert truth.shape[1:] == SCENE_SIZE
    # enough shapes for every notebook: something to find, compare and exclude
    assert len(truth) >= 4
    assert len(sample.labels) == len(truth)
    assert sample.target is not None
    target = truth[sample.target]
    assert sample.default_box["label"] == sample.labels[sample.target]
    # the default box holds the whole target shape, a few pixels outside it
    tx0, ty0, tx1, ty1 = sv.mask_to_xyxy(target[np.newaxis])[0]
    x0, y0, x1, y1 = _xyxy(sample.default_box)
    assert x0 <= tx0 and y0 <= ty0 and tx1 <= x1 and ty1 <= y1
    assert max(tx0 - x0, ty0 - y0, x1 - tx1, y1 - ty1) <= 4
    # the include point is on the target, the exclude point on another shape
    include_x, include_y = sample.default_point
    assert target[include_y, include_x]
    # both include clicks are on the target, apart from each other
    (x_a, y_a), (x_b, y_b) = sample.include_points
    assert (x_a, y_a) == sample.default_point
    assert target[y_b, x_b] and (x_b - x_a) ** 2 + (y_b - y_a) ** 2 >= 20**2
    exclude_x, exclude_y = sample.exclude_point
    others = np.delete(truth, sample.target, axis=0)
    assert others[:, exclude_y, exclude_x].any()
    assert "make_scene" in sample.source


@pytest.mark.parametrize("name", list(PHOTO_SIZES))
def test_scene_sample_is_always_the_same(name: str) -> None:
    first = samkit.sample_image(name, model_type="shapes")
    second = samkit.sample_image(name, model_type="shapes")
    np.testing.assert_array_equal(first.image, second.image)
    assert first.default_box == second.default_box


def test_scenes_differ_by_name() -> None:
    images = [
        samkit.sample_image(n, model_type="shapes").image for n in samkit.samples.SAMPLE_NAMES
    ]
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])


@pytest.mark.parametrize(
    ("model", "is_scene"),
    [
        # the bundled shapes model gets scenes
        ("shapes", True),
        # real weights get the photos
        ("vit_b", False),
        ("vit_h", False),
    ],
)
def test_sample_image_follows_samkit_model(
    monkeypatch: pytest.MonkeyPatch, model: str, is_scene: bool
) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", model)
    assert samkit.sample_image("coffee").is_scene is is_scene


def test_sample_image_default_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", "vit_b")
    assert samkit.sample_image().name == "chelsea"


@pytest.mark.parametrize(
    "name",
    [
        # an unknown photo
        "cat",
        # empty
        "",
        # not a string
        None,
        3,
        # the right name with the wrong case
        "Chelsea",
    ],
)
def test_sample_image_rejects_unknown_names(name: Any) -> None:
    expected = re.escape(
        f"sample name must be one of 'chelsea', 'coffee', 'astronaut', but got {name!r}"
    )
    with pytest.raises(ValueError, match=expected):
        samkit.sample_image(name)


@pytest.mark.parametrize(
    "model",
    [
        # a misspelt model type
        "vit-b",
        # not a string
        3,
    ],
)
def test_sample_image_rejects_unknown_model_types(model: Any) -> None:
    expected = re.escape(
        f"model_type must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got {model!r}"
    )
    with pytest.raises(ValueError, match=expected):
        samkit.sample_image("coffee", model_type=model)


def test_every_photo_is_credited() -> None:
    credits = (locations.data_dir() / "CREDITS.md").read_text(encoding="utf-8")
    photos = sorted(p.name for p in (locations.data_dir() / "images").iterdir())
    assert photos == sorted(f"{name}.png" for name in samkit.samples.SAMPLE_NAMES)
    for photo in photos:
        row = next(line for line in credits.splitlines() if f"`{photo}`" in line)
        assert re.search(r"CC0|[Pp]ublic domain", row), row


# ------------------------------------------------------------------ load_boxes


def test_photo_boxes_file() -> None:
    sample = samkit.sample_image("astronaut", model_type="vit_b")
    assert sample.boxes_file == locations.data_dir() / "annotations" / "astronaut.json"
    boxes = samkit.load_boxes(sample.boxes_file)
    assert boxes.data["class_name"].tolist() == ["persona", "casco", "bandera", "transbordador"]
    assert boxes.class_id.tolist() == [2, 1, 0, 3]  # bandera, casco, persona, transbordador
    assert boxes.xyxy.dtype == np.float32
    assert (boxes.xyxy[:, 2:] <= 512).all()
    # the person box is the default box
    np.testing.assert_allclose(boxes.xyxy[0], _xyxy(sample.default_box), atol=4)


def test_scene_boxes_file_matches_the_scene() -> None:
    # the detector stand-in for the scene: one box per shape, each within a few pixels
    sample = samkit.sample_image("astronaut", model_type="shapes")
    assert sample.boxes_file == locations.data_dir() / "annotations" / "astronaut_shapes.json"
    assert sample.ground_truth is not None
    boxes = samkit.load_boxes(sample.boxes_file)
    assert boxes.data["class_name"].tolist() == list(sample.labels)
    truth = sv.mask_to_xyxy(sample.ground_truth)
    assert np.abs(boxes.xyxy - truth).max() <= 3
    assert (np.diff(boxes.confidence) < 0).all()


@pytest.mark.parametrize(
    ("name", "has_file"),
    [
        # only the astronaut has detector boxes, for the photo and for the scene
        ("chelsea", False),
        ("coffee", False),
        ("astronaut", True),
    ],
)
@pytest.mark.parametrize("model", ["shapes", "vit_b"])
def test_boxes_file_only_where_one_exists(name: str, has_file: bool, model: str) -> None:
    assert (samkit.sample_image(name, model_type=model).boxes_file is not None) is has_file


def test_load_boxes_empty(tmp_path: Path) -> None:
    # a detector that found nothing
    path = tmp_path / "none.json"
    path.write_text(json.dumps({"image": "x", "detections": []}))
    boxes = samkit.load_boxes(path)
    assert len(boxes) == 0
    assert boxes.xyxy.shape == (0, 4)


def test_load_boxes_default_score(tmp_path: Path) -> None:
    # a score is optional (annotations by hand have none): it counts as 1
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"detections": [{"label": "cup", "xyxy": [1, 2, 3, 4]}]}))
    boxes = samkit.load_boxes(path)
    assert boxes.confidence.tolist() == [1.0]
    assert boxes.xyxy.tolist() == [[1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # not JSON
        ("[oops", "is not a JSON file"),
        # no detections list
        (json.dumps({"boxes": []}), "must hold an object with a 'detections' list"),
        # an entry that is not an object
        (json.dumps({"detections": [3]}), "detection 0 must be an object, but got int"),
        # a missing label
        (
            json.dumps({"detections": [{"xyxy": [0, 0, 1, 1]}]}),
            "detection 0 is missing key 'label'",
        ),
        # a box of three numbers
        (
            json.dumps({"detections": [{"label": "a", "xyxy": [0, 0, 1]}]}),
            r"detection 0 key 'xyxy' must be 4 numbers",
        ),
        # a box upside down
        (
            json.dumps({"detections": [{"label": "a", "xyxy": [5, 0, 1, 1]}]}),
            "x1 >= x0 and y1 >= y0",
        ),
        # an empty label
        (
            json.dumps({"detections": [{"label": "", "xyxy": [0, 0, 1, 1]}]}),
            "key 'label' must be a non-empty string",
        ),
        # a score above 1
        (
            json.dumps({"detections": [{"label": "a", "xyxy": [0, 0, 1, 1], "score": 2}]}),
            r"key 'score' must be a number in \[0, 1\], but got 2",
        ),
    ],
)
def test_load_boxes_rejects(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "boxes.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        samkit.load_boxes(path)


def test_load_boxes_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        samkit.load_boxes(tmp_path / "nothing.json")
