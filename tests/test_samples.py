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
from samkit.samples import DATA_DIR, SCENE_SIZE

ROOT = Path(__file__).resolve().parent.parent

#: Every sample name, with the size of its photo (height, width).
PHOTO_SIZES = {"chelsea": (300, 451), "coffee": (400, 600), "astronaut": (512, 512)}


def _xyxy(box: dict[str, Any]) -> tuple[float, float, float, float]:
    return (box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"])


# ------------------------------------------------------------------ sample_image


def test_sample_names() -> None:
    # the names are the bundled photos, in the documented order
    assert samkit.SAMPLE_NAMES == ("chelsea", "coffee", "astronaut")


@pytest.mark.parametrize("name", list(PHOTO_SIZES))
def test_photo_sample(name: str) -> None:
    sample = samkit.sample_image(name, model_type="vit_b")
    height, width = PHOTO_SIZES[name]
    assert sample.name == name
    assert sample.image.shape == (height, width, 3)
    assert sample.image.dtype == np.uint8
    with Image.open(DATA_DIR / "images" / f"{name}.png") as photo:
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
    assert re.search(r"CC0|public domain", sample.credit)
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
    images = [samkit.sample_image(n, model_type="shapes").image for n in samkit.SAMPLE_NAMES]
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
    credits = (DATA_DIR / "CREDITS.md").read_text(encoding="utf-8")
    photos = sorted(p.name for p in (DATA_DIR / "images").iterdir())
    assert photos == sorted(f"{name}.png" for name in samkit.SAMPLE_NAMES)
    for photo in photos:
        row = next(line for line in credits.splitlines() if f"`{photo}`" in line)
        assert re.search(r"CC0|[Pp]ublic domain", row), row


# ------------------------------------------------------------------ mask_report


@pytest.fixture(scope="module")
def scene() -> samkit.Sample:
    return samkit.sample_image("coffee", model_type="shapes")


@pytest.fixture(scope="module")
def photo() -> samkit.Sample:
    return samkit.sample_image("coffee", model_type="vit_b")


def _target_mask(sample: samkit.Sample) -> np.ndarray:
    assert sample.ground_truth is not None and sample.target is not None
    return sample.ground_truth[sample.target]


def test_mask_report_exact_mask(scene: samkit.Sample) -> None:
    # the ground truth itself: IoU 1 with its own shape
    mask = _target_mask(scene)
    label = scene.labels[scene.target or 0]
    assert samkit.mask_report(mask, scene) == (
        f"area: {int(mask.sum())} px\nIoU with ground truth: 1.000 (object {scene.target}, {label})"
    )


def test_mask_report_with_score_and_partial_mask(scene: samkit.Sample) -> None:
    # the top half (by rows) of the target: IoU is the kept share of its pixels
    mask = _target_mask(scene).copy()
    rows = np.nonzero(mask.any(axis=1))[0]
    mask[rows[len(rows) // 2] :] = False
    iou = mask.sum() / _target_mask(scene).sum()
    label = scene.labels[scene.target or 0]
    report = samkit.mask_report(mask, scene, score=np.float32(0.91234))
    assert report.splitlines() == [
        f"area: {int(mask.sum())} px",
        "score: 0.912",
        f"IoU with ground truth: {iou:.3f} (object {scene.target}, {label})",
    ]


def test_mask_report_empty_mask(scene: samkit.Sample) -> None:
    # an empty mask matches nothing: IoU 0 (with object 0, the first of the ties)
    report = samkit.mask_report(np.zeros(SCENE_SIZE, bool), scene)
    assert report == f"area: 0 px\nIoU with ground truth: 0.000 (object 0, {scene.labels[0]})"


def test_mask_report_accepts_one_mask_with_a_leading_axis(scene: samkit.Sample) -> None:
    mask = _target_mask(scene)
    assert samkit.mask_report(mask[np.newaxis], scene) == samkit.mask_report(mask, scene)


def test_mask_report_on_a_photo(photo: samkit.Sample) -> None:
    mask = np.zeros(photo.image.shape[:2], bool)
    mask[10:20, 10:30] = True
    assert samkit.mask_report(mask, photo, score=0.5) == (
        "area: 200 px\nscore: 0.500\n"
        "IoU with ground truth: unknown (no ground truth for the photo 'coffee')"
    )


@pytest.mark.parametrize(
    ("mask", "kwargs", "message"),
    [
        # a list is not a mask
        ([[True]], {}, r"mask must be one mask, a 2D array of shape \(H, W\), but got list"),
        # three masks at once
        (np.zeros((3, *SCENE_SIZE), bool), {}, r"but got shape \(3, 480, 640\)"),
        # a mask of another image
        (np.zeros((10, 10), bool), {}, r"mask must have the image's shape \(480, 640\)"),
        # a float mask
        (np.zeros(SCENE_SIZE, np.float32), {}, "masks must be boolean"),
        # a score that is not a number
        (np.zeros(SCENE_SIZE, bool), {"score": "high"}, "score must be a finite number"),
        # NaN and booleans are not scores
        (np.zeros(SCENE_SIZE, bool), {"score": float("nan")}, "score must be a finite number"),
        (np.zeros(SCENE_SIZE, bool), {"score": True}, "score must be a finite number"),
    ],
)
def test_mask_report_rejects(
    scene: samkit.Sample, mask: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.mask_report(mask, scene, **kwargs)


def test_mask_report_rejects_a_non_sample() -> None:
    with pytest.raises(ValueError, match=r"sample must be a Sample from samkit\.sample_image"):
        samkit.mask_report(np.zeros((2, 2), bool), "coffee")  # type: ignore[arg-type]


# ------------------------------------------------------------------ detections_report


def test_detections_report(scene: samkit.Sample) -> None:
    assert scene.ground_truth is not None
    masks = scene.ground_truth[:2]
    detections = sv.Detections(
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32),
        mask=masks,
        confidence=np.array([0.9, 0.8], np.float32),
        data={"class_name": np.array(["a", "b"])},
    )
    assert samkit.detections_report(detections, scene).splitlines() == [
        f"#0 a: area {int(masks[0].sum())} px, score 0.900, "
        f"IoU with ground truth: 1.000 (object 0, {scene.labels[0]})",
        f"#1 b: area {int(masks[1].sum())} px, score 0.800, "
        f"IoU with ground truth: 1.000 (object 1, {scene.labels[1]})",
    ]


def test_detections_report_without_names_or_scores(scene: samkit.Sample) -> None:
    mask = np.zeros((1, *SCENE_SIZE), bool)
    detections = sv.Detections(xyxy=np.zeros((1, 4), np.float32), mask=mask)
    report = samkit.detections_report(detections, scene)
    assert report == f"#0: area 0 px, IoU with ground truth: 0.000 (object 0, {scene.labels[0]})"


def test_detections_report_on_a_photo(photo: samkit.Sample) -> None:
    # no ground truth: no IoU on every line
    mask = np.zeros((1, *photo.image.shape[:2]), bool)
    mask[0, :10, :10] = True
    detections = sv.Detections(
        xyxy=np.zeros((1, 4), np.float32), mask=mask, confidence=np.array([0.5], np.float32)
    )
    assert samkit.detections_report(detections, photo) == "#0: area 100 px, score 0.500"


def test_detections_report_empty(scene: samkit.Sample) -> None:
    empty = sv.Detections(xyxy=np.zeros((0, 4), np.float32), mask=np.zeros((0, *SCENE_SIZE), bool))
    assert samkit.detections_report(empty, scene) == "no detections"


@pytest.mark.parametrize(
    ("detections", "message"),
    [
        # not detections
        (np.zeros((1, *SCENE_SIZE), bool), "detections must be sv.Detections, but got ndarray"),
        # boxes only
        (sv.Detections(xyxy=np.zeros((1, 4), np.float32)), "detections have no masks"),
        # masks of another size
        (
            sv.Detections(xyxy=np.zeros((1, 4), np.float32), mask=np.zeros((1, 5, 5), bool)),
            r"mask must have the image's shape \(480, 640\)",
        ),
    ],
)
def test_detections_report_rejects(scene: samkit.Sample, detections: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.detections_report(detections, scene)


# ------------------------------------------------------------------ load_boxes


def test_photo_boxes_file() -> None:
    sample = samkit.sample_image("astronaut", model_type="vit_b")
    assert sample.boxes_file == DATA_DIR / "annotations" / "astronaut.json"
    boxes = samkit.load_boxes(sample.boxes_file)
    assert boxes.data["class_name"].tolist() == ["person", "helmet", "flag", "space shuttle"]
    assert boxes.class_id.tolist() == [2, 1, 0, 3]
    assert boxes.xyxy.dtype == np.float32
    assert (boxes.xyxy[:, 2:] <= 512).all()
    # the person box is the default box
    np.testing.assert_allclose(boxes.xyxy[0], _xyxy(sample.default_box), atol=4)


def test_scene_boxes_file_matches_the_scene() -> None:
    # the detector stand-in for the scene: one box per shape, each within a few pixels
    sample = samkit.sample_image("astronaut", model_type="shapes")
    assert sample.boxes_file == DATA_DIR / "annotations" / "astronaut_shapes.json"
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
