"""Finding the images of the inputs, and the names they get."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from samkit.boxes import ImageBoxes
from samkit.segment.discovery import (
    discover,
    glob_root,
    item_key,
    make_items,
    output_stems,
    walk_visible,
)
from samkit.segment.spec import Failure, SegmentUsageError


@pytest.mark.parametrize(
    ("layout", "inputs", "expected", "failures"),
    [
        ({}, ["."], [], ["empty folder: no files found"]),  # empty: an empty folder
        ({"a.png": 1, ".b.png": 1, ".git/c.png": 1}, ["."], ["a.png"], []),  # hidden: left out
        ({"x/a.png": 1, "x/y/b.jpg": 1}, ["x"], ["a.png", "y/b.jpg"], []),  # recursive
        ({"x/a.png": 1}, ["x/a.png"], ["a.png"], []),  # a file: its base name
        ({"x/a.png": 1, "x/y/b.png": 1, "x/c.jpg": 1}, ["x/**/*.png"], ["a.png", "y/b.png"], []),
        ({"x/a.png": 1}, ["x/*.jpg"], [], ["the glob matches no files"]),
        ({"x/a.png": 1}, ["x", "x/a.png"], ["a.png"], []),  # the same file once
    ],
)
def test_discover(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    layout: dict[str, int],
    inputs: list[str],
    expected: list[str],
    failures: list[str],
) -> None:
    for name in layout:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    found, failed = discover(inputs, tmp_path.parent / "out")
    assert sorted(name for _, name in found) == expected
    assert [f.reason for f in failed] == failures


def test_discover_refuses_no_inputs(tmp_path: Path) -> None:
    with pytest.raises(SegmentUsageError, match="no inputs"):
        discover([], tmp_path)
    with pytest.raises(SegmentUsageError, match="must be a list of files"):
        discover("photos", tmp_path)  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["", "  ", None, 3])
def test_discover_refuses_an_input_that_is_no_path(tmp_path: Path, given: object) -> None:
    with pytest.raises(SegmentUsageError, match="an input must be a path or a glob, but got"):
        discover([given], tmp_path)  # type: ignore[list-item]


def test_discover_keeps_input_order_and_names_failures_by_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("b/2.png", "a/1.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    found, failed = discover(["b", "empty", "a"], tmp_path / "out")
    assert [(str(path), name) for path, name in found] == [
        ("b/2.png", "2.png"),
        ("a/1.png", "1.png"),
    ]
    assert failed == [Failure("empty", "empty folder: no files found")]


def test_walk_visible_leaves_out_the_output_folder(tmp_path: Path) -> None:
    for name in ("a.png", "out/masks/m.png", "sub/b.png", "sub/.c.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = walk_visible(tmp_path, (tmp_path / "out").resolve())
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.png", "sub/b.png"]
    assert walk_visible(tmp_path / "sub" / "missing", tmp_path) == []  # empty: nothing there


@pytest.mark.parametrize(
    ("pattern", "root"),
    [
        ("*.png", "."),  # empty prefix: the current folder
        ("photos/*.png", "photos"),
        ("photos/**/*.jpg", "photos"),
        ("cams/cam?/0001.png", "cams"),
        ("cams/[ab]/x.png", "cams"),
        ("photos/img_*.png", "photos"),  # a wildcard inside a name: its folder
    ],
)
def test_glob_root(pattern: str, root: str) -> None:
    assert glob_root(pattern) == Path(root)


@pytest.mark.parametrize(
    ("names", "stems"),
    [
        ([], {}),  # empty
        (["a.png", "x/b.jpg"], {"a.png": "a", "x/b.jpg": "x/b"}),
        (["a.png", "a.jpg", "b.png"], {"a.png": "a.png", "a.jpg": "a.jpg", "b.png": "b"}),
        (
            ["cam1/0001.png", "cam2/0001.png"],
            {"cam1/0001.png": "cam1/0001", "cam2/0001.png": "cam2/0001"},
        ),
    ],
)
def test_output_stems(names: list[str], stems: dict[str, str]) -> None:
    assert output_stems(names) == stems


def test_item_key_is_a_stable_hash_of_the_name() -> None:
    key = item_key("cam1/0001.png")
    assert len(key) == 24 and int(key, 16) >= 0
    assert key == item_key("cam1/0001.png")
    assert key != item_key("cam2/0001.png")


def test_make_items_gives_boxes_and_reports_images_without(tmp_path: Path) -> None:
    found = [(tmp_path / "a.png", "a.png"), (tmp_path / "b.png", "b.png")]
    boxes = ImageBoxes(np.array([[1, 2, 3, 4]], np.float32), np.array([7], np.int64))
    items, failures = make_items(found, {"a.png": boxes, "b.png": "no boxes for b.png"})
    assert [(i.file_name, i.key, i.output_stem) for i in items] == [
        ("a.png", item_key("a.png"), "a")
    ]
    assert items[0].path == str((tmp_path / "a.png").resolve())
    assert ImageBoxes.from_json(items[0].boxes or {}).category_id.tolist() == [7]
    assert failures == [Failure(str(tmp_path / "b.png"), "no boxes for b.png")]
    plain, none = make_items(found, {})  # automatic masks: no boxes, no failures
    assert [i.boxes for i in plain] == [None, None] and none == []
    assert make_items([], {}) == ([], [])  # empty
