from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samkit.boxes import ImageBoxes, read_box_file


def _coco(tmp_path: Path, content: dict[str, Any]) -> Path:
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(content))
    return path


COCO = {
    "images": [
        {"id": 7, "file_name": "cam1/0001.jpg"},
        {"id": 8, "file_name": "cam2/0001.jpg"},
        {"id": 9, "file_name": "street.png"},
        {"id": 10, "file_name": "empty.png"},
    ],
    "annotations": [
        {"image_id": 7, "bbox": [10, 20, 30, 40], "category_id": 3, "score": 0.9},
        {"image_id": 7, "bbox": [0, 0, 5, 5], "category_id": 1, "score": 0.5},
        {"image_id": 9, "bbox": [1, 2, 3, 4], "category_id": 3},
    ],
    "categories": [{"id": 1, "name": "dog"}, {"id": 3, "name": "person"}],
}


def test_coco_boxes_and_categories(tmp_path: Path) -> None:
    box_file = read_box_file(_coco(tmp_path, COCO))
    assert box_file.kind == "coco"
    assert box_file.categories == [{"id": 1, "name": "dog"}, {"id": 3, "name": "person"}]
    first = box_file.boxes["cam1/0001.jpg"]
    np.testing.assert_array_equal(first.xyxy, [[10, 20, 40, 60], [0, 0, 5, 5]])
    np.testing.assert_array_equal(first.category_id, [3, 1])
    assert first.score is not None
    np.testing.assert_allclose(first.score, [0.9, 0.5])
    assert box_file.boxes["street.png"].score is None  # no score in the file
    assert len(box_file.boxes["empty.png"]) == 0  # listed without annotations: zero boxes


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        ([], {}),  # empty: nothing to assign
        (["cam1/0001.jpg"], {"cam1/0001.jpg": 2}),  # the whole relative path
        (["cam1/0001.png"], {"cam1/0001.png": 2}),  # the path without its suffix
        (["photos/street.png"], {"photos/street.png": 1}),  # a unique base name
        (["street.jpg"], {"street.jpg": 1}),  # a unique base name without suffix
        (["empty.png"], {"empty.png": 0}),  # listed with no boxes: zero, not missing
        (["0001.jpg"], {"0001.jpg": "not unique"}),  # two entries have that base name
        (["a/street.png", "b/street.png"], {"a/street.png": "not unique"}),  # two images
        (["other.png"], {"other.png": "has no entry for 'other.png'"}),  # not in the file
    ],
)
def test_assign_matches_without_guessing(
    tmp_path: Path, images: list[str], expected: dict[str, int | str]
) -> None:
    found = read_box_file(_coco(tmp_path, COCO)).assign(images)
    for name, want in expected.items():
        got = found[name]
        if isinstance(want, int):
            assert isinstance(got, ImageBoxes), got
            assert len(got) == want
        else:
            assert isinstance(got, str)
            assert want in got
    assert set(found) == set(images)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"images": [], "annotations": {}}, "key 'annotations' must be a list"),
        ({"images": [{"id": 1}], "annotations": []}, "image 0 must have an int 'id'"),
        (
            {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 2}]},
            "annotation 0 has image_id 2",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.png"}],
                "annotations": [{"image_id": 1, "bbox": [1, 2, 3]}],
            },
            r"'bbox' must be 4 numbers \[x, y, w, h\], but got \[1, 2, 3\]",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.png"}],
                "annotations": [{"image_id": 1, "bbox": [1, 2, -3, 4]}],
            },
            "must have w, h >= 0",
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "a.png"}],
                "annotations": [],
            },
            "names the image 'a.png' twice",
        ),
        ({"annotations": []}, "must be a COCO JSON file"),
        (
            {
                "images": [{"id": 1, "file_name": "a.png"}],
                "annotations": [{"image_id": 1, "bbox": [1, 2, 3, 4], "category_id": 2**70}],
            },
            "annotation 0 key 'category_id' must be from 0 to 2147483647, but got " + str(2**70),
        ),
        (
            {
                "images": [{"id": 1, "file_name": "a.png"}],
                "annotations": [],
                "categories": [{"id": -(2**64), "name": "x"}],
            },
            f"category 0 'id' must be from 0 to 2147483647, but got {-(2**64)}",
        ),
    ],
)
def test_bad_coco_is_refused(tmp_path: Path, content: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_box_file(_coco(tmp_path, content))


def test_yolo_folder(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    (labels / "cam1").mkdir(parents=True)
    (labels / "classes.txt").write_text("person\ncar\n")
    (labels / "cam1" / "0001.txt").write_text("1 0.5 0.5 0.2 0.4\n\n0 0.25 0.25 0.5 0.5 0.8\n")
    (labels / "empty.txt").write_text("")
    box_file = read_box_file(labels)
    assert box_file.kind == "yolo"
    assert box_file.categories == [{"id": 0, "name": "person"}, {"id": 1, "name": "car"}]
    boxes = box_file.boxes["cam1/0001"]
    assert boxes.relative
    np.testing.assert_allclose(boxes.to_pixels(100, 200), [[80, 30, 120, 70], [0, 0, 100, 50]])
    np.testing.assert_array_equal(boxes.category_id, [1, 0])
    assert boxes.score is None  # only one line has a confidence
    assert len(box_file.boxes["empty"]) == 0
    assert isinstance(box_file.assign(["cam1/0001.jpg"])["cam1/0001.jpg"], ImageBoxes)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2", "must be 'class cx cy w h"),  # four numbers
        ("x 0.5 0.5 0.2 0.2", r"\(numbers\)"),  # not numbers
        ("-1 0.5 0.5 0.2 0.2", "class number from 0 to 2147483647"),
        ("0 50 60 20 20", r"relative to the image, in \[0, 1\]"),  # pixels, not relative
        # an overflowing class number (1e30 is a whole number, too large for any id)
        ("1e30 0.5 0.5 0.2 0.2", "class number from 0 to 2147483647, but got '1e30 0.5"),
    ],
)
def test_bad_yolo_line_is_refused(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "a.txt").write_text(line + "\n")
    with pytest.raises(ValueError, match=message):
        read_box_file(tmp_path)


def test_samkit_boxes_file_and_folder(tmp_path: Path) -> None:
    entry = {
        "image": "astronaut",
        "detections": [
            {"label": "person", "score": 0.9, "xyxy": [1, 2, 30, 40]},
            {"label": "cup", "score": 0.4, "xyxy": [5, 5, 9, 9]},
        ],
    }
    (tmp_path / "astronaut.json").write_text(json.dumps(entry))
    (tmp_path / "coffee.json").write_text(json.dumps({"image": "coffee", "detections": []}))
    single = read_box_file(tmp_path / "astronaut.json")
    folder = read_box_file(tmp_path)
    assert single.kind == folder.kind == "samkit"
    assert folder.categories == [{"id": 1, "name": "cup"}, {"id": 2, "name": "person"}]
    boxes = folder.boxes["astronaut"]
    np.testing.assert_array_equal(boxes.xyxy, [[1, 2, 30, 40], [5, 5, 9, 9]])
    np.testing.assert_array_equal(boxes.category_id, [2, 1])
    assert len(folder.boxes["coffee"]) == 0
    assert isinstance(folder.assign(["astronaut.png"])["astronaut.png"], ImageBoxes)


@pytest.mark.parametrize(
    ("files", "target", "message"),
    [
        ({}, "missing.json", "box file not found"),  # nothing there
        ({"t.json": "{"}, "t.json", "is not a JSON file"),
        # nested too deeply for the parser: a clear refusal, not RecursionError
        ({"t.json": "[" * 100_000}, "t.json", r"is nested too deeply to be read \(arrays"),
        # Latin-1: not UTF-8, and no byte-order mark to say otherwise
        (
            {"t.json": '{"a": "\u00e9"}'.encode("latin-1").decode("latin-1")},
            "t.json",
            r"must be UTF-8 text \(or UTF-16/UTF-32 with a byte-order mark\), but byte 0xe9 "
            "at position 7 is not utf-8",
        ),
        ({"t.json": "[]"}, "t.json", "must be a COCO JSON file"),  # JSON, but neither kind
        ({}, ".", r"holds 0 .txt and 0 .json files"),  # an empty folder
        ({"a.txt": "", "b.json": "{}"}, ".", r"holds 1 .txt and 1 .json files"),  # mixed
    ],
)
def test_unreadable_box_source_is_refused(
    tmp_path: Path, files: dict[str, str], target: str, message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="latin-1")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        read_box_file(tmp_path / target)


def test_box_files_in_utf16_are_read(tmp_path: Path) -> None:
    content = {
        "images": [{"id": 1, "file_name": "a.png"}],
        "annotations": [{"image_id": 1, "bbox": [1, 2, 3, 4], "category_id": 1}],
        "categories": [{"id": 1, "name": "caf\u00e9"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(content), encoding="utf-16")
    box_file = read_box_file(tmp_path / "coco.json")
    assert box_file.categories == [{"id": 1, "name": "caf\u00e9"}]
    np.testing.assert_array_equal(box_file.boxes["a.png"].xyxy, [[1, 2, 4, 6]])
    yolo = tmp_path / "yolo"
    yolo.mkdir()
    (yolo / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n", encoding="utf-16")
    (yolo / "classes.txt").write_text("caf\u00e9\n", encoding="utf-16")
    assert read_box_file(yolo).categories == [{"id": 0, "name": "caf\u00e9"}]
    (yolo / "b.txt").write_bytes("0 0.5 0.5 0.2 0.2".encode("utf-16-le"))  # no mark: refused
    message = (
        r"b.txt must be UTF-8 text \(or UTF-16/UTF-32 with a byte-order mark\), but it holds "
        r"NUL bytes \(UTF-16 without a byte-order mark, or not text\)"
    )
    with pytest.raises(ValueError, match=message):
        read_box_file(yolo)


def test_image_boxes_json_round_trip() -> None:
    boxes = ImageBoxes(
        xyxy=np.array([[1, 2, 3, 4]], dtype=np.float32),
        category_id=np.array([5]),
        score=np.array([0.5], dtype=np.float32),
        relative=False,
    )
    back = ImageBoxes.from_json(json.loads(json.dumps(boxes.to_json())))
    np.testing.assert_array_equal(back.xyxy, boxes.xyxy)
    np.testing.assert_array_equal(back.category_id, boxes.category_id)
    assert back.score is not None and back.score.tolist() == [0.5]
