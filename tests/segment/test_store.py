"""The store under OUT/.samkit/: settings kept apart, finished images skipped, results assembled."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from samkit.cli import main
from samkit.segment.job import segment_images
from samkit.segment.source import source_stamp
from samkit.segment.spec import STORE_FORMAT, ImageItem, JobSpec, SegmentUsageError
from samkit.segment.store import (
    assemble,
    check_store,
    fingerprint,
    is_done,
    open_store,
    read_record,
    settings_changes,
    write_record,
)
from samkit.version import __version__

from .support import FAST, scene


@pytest.mark.slow
def test_other_settings_are_refused_and_overwrite_starts_afresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(scene(1).image).save(folder / "a.png")
    out = tmp_path / "out"
    assert main(["segment", str(folder), "--out", str(out), *FAST]) == 0
    capsys.readouterr()
    changed = [*FAST, "--pred-iou-thresh", "0.5"]
    assert main(["segment", str(folder), "--out", str(out), *changed]) == 2
    err = capsys.readouterr().err
    assert "holds results made with other settings (changed: amg.pred_iou_thresh 0.6 -> 0.5)" in err
    assert "--overwrite" in err
    assert main(["segment", str(folder), "--out", str(out), *changed, "--overwrite"]) == 0
    assert "done 1, skipped 0, failed 0" in capsys.readouterr().out
    settings = json.loads((out / ".samkit" / "settings.json").read_text())
    assert settings["amg"]["pred_iou_thresh"] == 0.5


@pytest.mark.slow
def test_changed_source_file_is_redone(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(scene(1).image).save(folder / "a.png")
    Image.fromarray(scene(2).image).save(folder / "b.png")
    out = tmp_path / "out"
    kwargs: dict[str, Any] = {"model_type": "shapes", "points_per_side": 4, "progress": False}
    first = segment_images([folder], out, **kwargs)
    assert (first.done, first.skipped) == (2, 0)
    Image.fromarray(scene(3).image).save(folder / "b.png")
    os.utime(folder / "b.png", ns=(1, 1))
    second = segment_images([folder], out, **kwargs)
    assert (second.done, second.skipped) == (1, 1)


def _spec(out: Path, **changes: Any) -> JobSpec:
    settings: dict[str, Any] = {
        "out_dir": str(out),
        "model_type": "shapes",
        "checkpoint": None,
        "device": "cpu",
        "fast": False,
        "mode": "amg",
        "amg": {"points_per_side": 4},
        "png": False,
        "preview": False,
    }
    return JobSpec(**{**settings, **changes})


SHA = "ab" * 32


def test_fingerprint_leaves_out_the_device_and_fast(tmp_path: Path) -> None:
    plain = fingerprint(_spec(tmp_path), None, SHA)
    assert fingerprint(_spec(tmp_path, device="cuda", fast=True), None, SHA) == plain
    assert plain["format"] == STORE_FORMAT
    assert plain["amg"] == {"points_per_side": 4}
    assert fingerprint(_spec(tmp_path, mode="boxes"), None, SHA)["amg"] is None
    # the checkpoint is known by its content, not its path
    checkpoint = tmp_path / "weights.pt"
    given = fingerprint(_spec(tmp_path, checkpoint=str(checkpoint)), None, SHA)["checkpoint"]
    assert given == {"sha256": SHA}


@pytest.mark.parametrize(
    ("before", "now", "changes"),
    [
        ({}, {}, []),  # empty: nothing changed
        ({"png": False}, {"png": False}, []),
        ({"png": False}, {"png": True}, ["png False -> True"]),
        ({"amg": {"a": 1, "b": 2}}, {"amg": {"a": 1, "b": 3}}, ["amg.b 2 -> 3"]),
        ({"amg": {"a": 1}}, {"amg": None}, ["amg {'a': 1} -> None"]),  # amg to boxes
        ({}, {"format": "x"}, ["format None -> 'x'"]),  # a damaged settings file reads as {}
    ],
)
def test_settings_changes(before: dict[str, Any], now: dict[str, Any], changes: list[str]) -> None:
    assert settings_changes(before, now) == changes


def test_open_store_removes_the_temp_file_of_a_killed_run(tmp_path: Path) -> None:
    settings = fingerprint(_spec(tmp_path), None, SHA)
    open_store(tmp_path, settings, overwrite=False)
    stale = tmp_path / ".samkit" / "images" / ".abc.json.1234.tmp"
    stale.write_text("half")
    open_store(tmp_path, settings, overwrite=False)  # the same settings: resumes
    assert not stale.exists()
    assert json.loads((tmp_path / ".samkit" / "settings.json").read_text()) == {
        **settings,
        "formats": ["coco"],
    }


def test_other_settings_are_refused_once_there_are_results(tmp_path: Path) -> None:
    open_store(tmp_path, fingerprint(_spec(tmp_path), None, SHA), overwrite=False)
    other = fingerprint(_spec(tmp_path, png=True), None, SHA)
    check_store(tmp_path, other, overwrite=False)  # no result yet: nothing to mix
    item = _item(tmp_path, "a.png")
    write_record(tmp_path, item, _record(item, 1))
    with pytest.raises(SegmentUsageError, match=r"changed: png False -> True"):
        check_store(tmp_path, other, overwrite=False)
    check_store(tmp_path, other, overwrite=True)
    open_store(tmp_path, other, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".samkit", "a.png"]
    assert not list((tmp_path / ".samkit" / "images").iterdir())
    assert json.loads((tmp_path / ".samkit" / "settings.json").read_text())["png"] is True


def _item(folder: Path, name: str) -> ImageItem:
    (folder / name).write_bytes(name.encode())
    return ImageItem(str(folder / name), name, f"key-{name}", name)


def _record(item: ImageItem, annotations: int) -> dict[str, Any]:
    return {
        "format": STORE_FORMAT,
        "file_name": item.file_name,
        "height": 4,
        "width": 5,
        "source": source_stamp(item.path),
        "annotations": [{"area": n} for n in range(annotations)],
    }


@pytest.mark.parametrize(
    ("content", "read"),
    [
        ("", False),  # empty: not JSON
        (f'{{"format": "{STORE_FORMAT}", "file_name": "a"}}', True),
        ('{"format": "samkit-segment-0"}', False),  # another format
        ("[1, 2]", False),  # not an object
        (f'{{"format": "{STORE_FORMAT}"', False),  # cut short
        ('{"format": "samkit-segment-1", "file_name": "a"}', False),  # an earlier format
        ("[" * 100_000, False),  # nested too deeply to parse
    ],
)
def test_read_record(tmp_path: Path, content: str, read: bool) -> None:
    (tmp_path / "r.json").write_text(content)
    assert (read_record(tmp_path / "r.json") is not None) is read
    assert read_record(tmp_path / "missing.json") is None


def test_is_done_needs_the_same_name_and_source(tmp_path: Path) -> None:
    item = _item(tmp_path, "a.png")
    assert not is_done(tmp_path, item)
    write_record(tmp_path, item, _record(item, 1))
    assert is_done(tmp_path, item)
    renamed = ImageItem(item.path, "b.png", item.key, "b")
    assert not is_done(tmp_path, renamed)  # a record of another file_name
    (tmp_path / "a.png").write_bytes(b"changed, and longer")
    assert not is_done(tmp_path, item)
    (tmp_path / "a.png").unlink()
    assert not is_done(tmp_path, item)  # the source is gone


def test_is_done_needs_every_format_asked_for(tmp_path: Path) -> None:
    item = _item(tmp_path, "a.png")
    write_record(tmp_path, item, _record(item, 1))  # a record that names no format: COCO
    assert is_done(tmp_path, item, ("coco",))
    assert not is_done(tmp_path, item, ("coco", "yolo"))
    write_record(tmp_path, item, {**_record(item, 1), "formats": ["yolo"]})
    assert is_done(tmp_path, item, ("coco", "yolo"))  # COCO is the record itself
    assert not is_done(tmp_path, item, ("png",))


def test_assemble_numbers_the_stored_results_by_file_name(tmp_path: Path) -> None:
    items = [_item(tmp_path, name) for name in ("c.png", "a.png", "b.png")]
    for item, count in zip(items, (2, 1, 0), strict=True):
        if item.file_name != "b.png":  # b has no stored result: left out
            write_record(tmp_path, item, _record(item, count))
    categories = [{"id": 1, "name": "object"}]
    target, images, annotations = assemble(tmp_path, items, categories, {"png": False})
    assert (target, images, annotations) == (tmp_path / "annotations.json", 2, 3)
    content = json.loads(target.read_text())
    assert [(i["id"], i["file_name"]) for i in content["images"]] == [(1, "a.png"), (2, "c.png")]
    assert [(a["id"], a["image_id"], a["area"]) for a in content["annotations"]] == [
        (1, 1, 0),
        (2, 2, 0),
        (3, 2, 1),
    ]
    assert content["categories"] == categories
    assert content["info"]["settings"] == {"png": False}
    assert content["info"]["version"] == __version__
    assert not list(tmp_path.glob(".*.tmp"))
    empty = assemble(tmp_path, [], categories, {})  # empty: a valid file with no images
    assert empty[1:] == (0, 0)
