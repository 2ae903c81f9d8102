"""``samkit segment --format``: COCO, YOLO labels and cut-outs, each read back into its masks."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from samkit.cli import main
from samkit.formats import masks_to_yolo_lines, read_yolo_labels
from samkit.segment.job import segment_images
from samkit.segment.outputs import (
    check_formats,
    data_yaml_text,
    earlier_files,
    format_files,
    remove_stale,
    yolo_class_ids,
)
from samkit.segment.owned import foreign_files, own_files
from samkit.segment.spec import ImageItem, SegmentUsageError

from .support import FAST, SIZE, decode, mask_iou, scene, scenes_folder


@pytest.mark.parametrize(
    ("given", "formats"),
    [
        ("coco", ("coco",)),
        ("yolo,png", ("yolo", "png")),
        (["png", "coco, YOLO"], ("coco", "yolo", "png")),  # repeated, spaces, any case
        (("yolo", "yolo"), ("yolo",)),
    ],
)
def test_check_formats(given: Any, formats: tuple[str, ...]) -> None:
    assert check_formats(given) == formats


@pytest.mark.parametrize(
    ("given", "got"),
    [("xml", "'xml'"), ("coco,,png", "''"), (["coco", "tiff"], "'tiff'"), ([], "none"), (3, "3")],
)
def test_bad_formats_say_what_was_expected_and_what_arrived(given: Any, got: str) -> None:
    expected = "one or more of coco, yolo, png (comma-separated, or the option repeated)"
    with pytest.raises(SegmentUsageError) as raised:
        check_formats(given)
    assert str(raised.value) == f"format must be {expected}, but got {got}"


def test_a_bad_format_exits_2_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(scene(1).image).save(tmp_path / "a.png")
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "a.png"), "--out", str(out), *FAST]
    assert main([*args, "--format", "coco", "--format", "json"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "samkit segment: error: format must be one or more of coco, yolo, png "
        "(comma-separated, or the option repeated), but got 'json'\n"
    )
    assert not out.exists()


@pytest.fixture(scope="module")
def all_formats(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """Two scenes segmented into COCO, YOLO labels and cut-outs (``--format`` twice)."""
    root = tmp_path_factory.mktemp("formats")
    scenes_folder(root / "in", 2)
    out = root / "out"
    args = ["segment", str(root / "in"), "--out", str(out), *FAST]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([*args, "--format", "coco,yolo", "--format", "png"]) == 0
    return root / "in", out, printed.getvalue()


def _coco_masks(out: Path) -> dict[str, list[dict[str, Any]]]:
    coco = json.loads((out / "annotations.json").read_text())
    names = {image["id"]: image["file_name"] for image in coco["images"]}
    by_file: dict[str, list[dict[str, Any]]] = {name: [] for name in names.values()}
    for annotation in coco["annotations"]:
        by_file[names[annotation["image_id"]]].append(annotation)
    return by_file


@pytest.mark.slow
def test_every_format_is_written_and_said(all_formats: tuple[Path, Path, str]) -> None:
    _, out, printed = all_formats
    masks = sum(len(a) for a in _coco_masks(out).values())
    assert masks > 0
    assert f"2 images, {masks} masks -> {out / 'annotations.json'}" in printed
    assert f"-> {out / 'labels'} (YOLO; classes in {out / 'data.yaml'})" in printed
    assert f"-> {out / 'cutouts'} (PNG cut-outs)" in printed
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["0000.txt", "0001.txt"]
    assert yaml.safe_load((out / "data.yaml").read_text()) == {"names": ["object"], "nc": 1}


@pytest.mark.slow
def test_yolo_labels_read_back_into_the_coco_masks(all_formats: tuple[Path, Path, str]) -> None:
    _, out, _ = all_formats
    for file_name, found in _coco_masks(out).items():
        label = out / "labels" / Path(file_name).with_suffix(".txt")
        lines = label.read_text().splitlines()
        read = read_yolo_labels(label, SIZE)
        assert len(read) == len(lines) >= len(found) > 0
        assert set(read.class_id.tolist()) == {0}
        start = 0
        for annotation in found:  # a mask's pieces are its lines, in the masks' order
            mask = decode(annotation)
            pieces = len(masks_to_yolo_lines(mask[None]))
            back = read.mask[start : start + pieces].any(axis=0)
            start += pieces
            assert mask_iou(back, mask) >= 0.98, (file_name, annotation["id"])
        assert start == len(lines)


@pytest.mark.slow
def test_cutouts_read_back_into_the_coco_masks_and_pixels(
    all_formats: tuple[Path, Path, str],
) -> None:
    folder, out, _ = all_formats
    for file_name, found in _coco_masks(out).items():
        image = np.asarray(Image.open(folder / file_name).convert("RGB"))
        cutouts = sorted((out / "cutouts" / Path(file_name).stem).iterdir())
        assert [p.name for p in cutouts] == [f"cutout_{i:03d}.png" for i in range(len(found))]
        for path, annotation in zip(cutouts, found, strict=True):
            rgba = np.asarray(Image.open(path))
            assert rgba.shape[2] == 4
            x, y, w, h = annotation["bbox"]
            assert rgba.shape[:2] == (h, w)
            back = np.zeros(SIZE, bool)
            back[y : y + h, x : x + w] = rgba[:, :, 3] == 255
            assert np.array_equal(back, decode(annotation))
            inside = rgba[:, :, 3] == 255
            assert np.array_equal(rgba[:, :, :3][inside], image[y : y + h, x : x + w][inside])
            assert set(np.unique(rgba[:, :, 3]).tolist()) <= {0, 255}


@pytest.mark.slow
def test_samkit_owns_every_file_of_every_format(all_formats: tuple[Path, Path, str]) -> None:
    _, out, _ = all_formats
    own = own_files(out)
    assert {"annotations.json", "data.yaml", "labels/0000.txt", "cutouts/0000/"} <= own
    assert foreign_files(out) == []


@pytest.mark.slow  # three runs
def test_overwrite_removes_the_new_files_and_keeps_the_users(tmp_path: Path) -> None:
    scenes_folder(tmp_path / "in", 1)
    out = tmp_path / "out"
    settings: dict[str, Any] = {"model_type": "shapes", "points_per_side": 4, "progress": False}
    segment_images([tmp_path / "in"], out, formats="yolo,png", **settings)
    assert not (out / "annotations.json").exists()
    (out / "labels" / "mine.txt").write_text("0 0.1 0.1 0.2 0.1 0.2 0.2\n")
    with pytest.raises(SegmentUsageError, match=re.escape("samkit did not write: labels/mine.txt")):
        segment_images([tmp_path / "in"], out, formats="coco", overwrite=True, **settings)
    (out / "labels" / "mine.txt").rename(tmp_path / "mine.txt")
    summary = segment_images([tmp_path / "in"], out, overwrite=True, **settings)
    assert summary.formats == ("coco",)
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if ".samkit" not in p.parts)
    assert left == ["annotations.json"]


@pytest.mark.slow  # three runs
def test_a_format_added_later_is_written_and_kept(tmp_path: Path) -> None:
    scenes_folder(tmp_path / "in", 1)
    out = tmp_path / "out"
    settings: dict[str, Any] = {"model_type": "shapes", "points_per_side": 4, "progress": False}
    first = segment_images([tmp_path / "in"], out, **settings)
    assert (first.done, (out / "labels").exists()) == (1, False)
    added = segment_images([tmp_path / "in"], out, formats="yolo", **settings)
    assert (added.done, added.skipped, added.formats) == (1, 0, ("coco", "yolo"))
    assert (out / "labels" / "0000.txt").is_file() and (out / "data.yaml").is_file()
    again = segment_images([tmp_path / "in"], out, formats="coco", **settings)
    assert (again.done, again.skipped, again.formats) == (0, 1, ("coco", "yolo"))
    stored = json.loads((out / ".samkit" / "settings.json").read_text())
    assert stored["formats"] == ["coco", "yolo"]
    assert foreign_files(out) == []


def test_format_files() -> None:
    item = ImageItem("/in/cam/a.jpg", "cam/a.jpg", "k", "cam/a")
    assert format_files(("coco",), item, 2) == []
    assert format_files(("coco", "yolo", "png"), item, 2) == [
        "labels/cam/a.txt",
        "cutouts/cam/a/",
        "cutouts/cam/a/cutout_000.png",
        "cutouts/cam/a/cutout_001.png",
    ]
    assert format_files(("png",), item, 0) == []  # no cut-out folder for no masks


def test_yolo_classes_follow_the_category_ids() -> None:
    assert yolo_class_ids(np.array([7, 3, 7]), (3, 7)) == [1, 0, 1]
    text = data_yaml_text([{"id": 7, "name": 'a "b": c'}, {"id": 3, "name": "café"}])
    assert yaml.safe_load(text) == {"names": ["café", 'a "b": c'], "nc": 2}


def test_stale_files_of_an_earlier_result_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "cutouts" / "a"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"cutout_{i:03d}.png").write_bytes(b"x")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "b.txt").write_text("")
    (tmp_path.parent / "outside.txt").write_text("kept")
    before = [
        "cutouts/a/",
        *(f"cutouts/a/cutout_{i:03d}.png" for i in range(3)),
        "labels/b.txt",
        "../outside.txt",
    ]
    remove_stale(tmp_path, before, ["cutouts/a/", "cutouts/a/cutout_000.png"])
    assert sorted(p.name for p in folder.iterdir()) == ["cutout_000.png"]
    assert not (tmp_path / "labels" / "b.txt").exists()
    assert (tmp_path.parent / "outside.txt").exists()
    remove_stale(tmp_path, ["cutouts/a/", "cutouts/a/cutout_000.png"], [])
    assert not folder.exists()


def test_earlier_files_are_the_records_and_the_journals(tmp_path: Path) -> None:
    (tmp_path / ".samkit" / "images").mkdir(parents=True)
    (tmp_path / ".samkit" / "writing").mkdir()
    (tmp_path / ".samkit" / "images" / "k.json").write_text('{"files": ["a", "b"]}')
    (tmp_path / ".samkit" / "writing" / "k.json").write_text('{"files": ["b", "c", 3]}')
    assert earlier_files(tmp_path, "k") == ["a", "b", "c"]
    assert earlier_files(tmp_path, "other") == []
