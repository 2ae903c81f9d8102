"""The segment job, run for real with the bundled ``shapes`` model on small scenes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

import samkit
from samkit.cli import main
from samkit.segment_job import SegmentUsageError, discover

#: Small images and a coarse grid keep every run to a few seconds on a busy CPU.
FAST = ["--model", "shapes", "--device", "cpu", "--points-per-side", "4", "--no-progress"]
SIZE = (64, 80)  # (height, width)


def _scene(seed: int, size: tuple[int, int] = SIZE) -> samkit.Scene:
    return samkit.shapes.make_scene(seed, height=size[0], width=size[1], n_shapes=2, min_size=0.3)


def _decode(annotation: dict[str, Any]) -> np.ndarray:
    """An annotation's mask, decoded by pycocotools (through samkit, which quiets NumPy 2)."""
    return samkit.export.rle_to_masks([annotation["segmentation"]])[0]


def _rotated_jpeg(path: Path) -> None:
    """A 64x80 (wide) JPEG stored with EXIF orientation 6: load_image gives it 80x64."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(_scene(6).image).save(path, exif=exif, quality=95)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PNG, JPEG, grayscale, 16-bit, RGBA, EXIF-rotated, a corrupt file, a text file."""
    folder = tmp_path_factory.mktemp("mixed") / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_scene(1).image).save(folder / "rgb.png")
    Image.fromarray(_scene(2).image).save(folder / "photo.jpg", quality=95)
    Image.fromarray(_scene(3).image).convert("L").save(folder / "gray.png")
    deep = (_scene(4).image[:, :, 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep.png")
    rgba = np.dstack([_scene(5).image, np.full(SIZE, 200, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(folder / "alpha.png")
    _rotated_jpeg(folder / "rotated.jpg")
    Image.fromarray(_scene(7).image).save(folder / "sub" / "rgb.png")  # same base name
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (folder / "notes.txt").write_text("not an image\n")
    (folder / ".hidden.png").write_bytes(b"hidden files are not inputs")
    return folder


GOOD = ["alpha.png", "deep.png", "gray.png", "photo.jpg", "rgb.png", "rotated.jpg", "sub/rgb.png"]


@pytest.fixture(scope="module")
def mixed_run(
    mixed_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, str, Path]:
    out = tmp_path_factory.mktemp("mixed_out") / "out"
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(["segment", str(mixed_folder), "--out", str(out), *FAST])
    return status, buffer.getvalue(), out


def test_bad_files_are_reported_and_the_rest_is_written(mixed_run: tuple[int, str, Path]) -> None:
    status, printed, out = mixed_run
    assert status == 1
    assert "done 7, skipped 0, failed 2" in printed
    failed = [line for line in printed.splitlines() if line.startswith("  failed: ")]
    assert len(failed) == 2
    assert any("corrupt.jpg: cannot read" in line for line in failed)
    assert any("notes.txt: cannot read" in line for line in failed)
    coco = COCO(str(out / "annotations.json"))
    names = sorted(image["file_name"] for image in coco.dataset["images"])
    assert names == GOOD
    assert coco.dataset["categories"] == [{"id": 1, "name": "object"}]
    assert len(coco.anns) > 0


def test_masks_are_at_each_image_own_size_upright(mixed_run: tuple[int, str, Path]) -> None:
    _, _, out = mixed_run
    coco = COCO(str(out / "annotations.json"))
    for image in coco.dataset["images"]:
        expected = (80, 64) if image["file_name"] == "rotated.jpg" else SIZE
        assert (image["height"], image["width"]) == expected, image
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            mask = _decode(annotation)
            assert mask.shape == expected
            assert int(mask.sum()) == annotation["area"]
            x, y, w, h = annotation["bbox"]
            ys, xs = np.nonzero(mask)
            assert [x, y, w, h] == [
                xs.min(),
                ys.min(),
                xs.max() - xs.min() + 1,
                ys.max() - ys.min() + 1,
            ]
            assert 0 <= annotation["predicted_iou"] <= 1.5
            assert 0 <= annotation["stability_score"] <= 1


def test_rerun_skips_what_is_done(mixed_folder: Path, mixed_run: tuple[int, str, Path]) -> None:
    _, _, out = mixed_run
    before = (out / "annotations.json").read_text()
    summary = samkit.segment_images(
        [mixed_folder], out, model_type="shapes", device="cpu", points_per_side=4, progress=False
    )
    assert (summary.done, summary.skipped, len(summary.failed)) == (0, 7, 2)
    assert json.loads((out / "annotations.json").read_text()) == json.loads(before)


def test_other_settings_are_refused_and_overwrite_starts_afresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(_scene(1).image).save(folder / "a.png")
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


def test_changed_source_file_is_redone(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(_scene(1).image).save(folder / "a.png")
    Image.fromarray(_scene(2).image).save(folder / "b.png")
    out = tmp_path / "out"
    kwargs: dict[str, Any] = {"model_type": "shapes", "points_per_side": 4, "progress": False}
    first = samkit.segment_images([folder], out, **kwargs)
    assert (first.done, first.skipped) == (2, 0)
    Image.fromarray(_scene(3).image).save(folder / "b.png")
    os.utime(folder / "b.png", ns=(1, 1))
    second = samkit.segment_images([folder], out, **kwargs)
    assert (second.done, second.skipped) == (1, 1)


def test_png_and_preview_keep_same_names_apart(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for camera, seed in (("cam1", 1), ("cam2", 2)):
        (folder / camera).mkdir(parents=True)
        Image.fromarray(_scene(seed).image).save(folder / camera / "0001.png")
    out = tmp_path / "out"
    summary = samkit.segment_images(
        [folder], out, model_type="shapes", points_per_side=4, png=True, preview=True,
        progress=False,
    )  # fmt: skip
    assert summary.ok and summary.done == 2
    coco = COCO(str(out / "annotations.json"))
    for image in coco.dataset["images"]:
        stem = image["file_name"].removesuffix(".png")
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        pngs = sorted((out / "masks" / stem).glob("mask_*.png"))
        assert len(pngs) == len(annotations) > 0
        for png, annotation in zip(pngs, annotations, strict=True):
            np.testing.assert_array_equal(samkit.export.load_mask_png(png), _decode(annotation))
        preview = samkit.load_image(out / "previews" / f"{stem}.jpg")
        assert preview.shape == (*SIZE, 3)
    assert sorted(i["file_name"] for i in coco.dataset["images"]) == [
        "cam1/0001.png",
        "cam2/0001.png",
    ]


def _scenes_folder(folder: Path, count: int, size: tuple[int, int] = SIZE) -> list[samkit.Scene]:
    folder.mkdir(parents=True)
    scenes = [_scene(seed, size) for seed in range(count)]
    for seed, scene in enumerate(scenes):
        Image.fromarray(scene.image).save(folder / f"{seed:04d}.png")
    return scenes


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_boxes_from_coco_and_yolo_give_the_same_masks(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    scenes = _scenes_folder(folder, 2)
    (folder / "unlisted.png").write_bytes((folder / "0000.png").read_bytes())
    height, width = SIZE
    coco: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    coco["categories"] = [{"id": 1, "name": "shape"}, {"id": 2, "name": "other"}]
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.txt").write_text("zero\nshape\n")
    for i, scene in enumerate(scenes):
        coco["images"].append({"id": i + 1, "file_name": f"{i:04d}.png"})
        lines = []
        for x0, y0, x1, y1 in scene.xyxy.tolist():
            coco["annotations"].append(
                {"image_id": i + 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "category_id": 1}
            )
            cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
            lines.append(f"1 {cx} {cy} {(x1 - x0) / width} {(y1 - y0) / height}")
        (labels / f"{i:04d}.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    results = {}
    for name, source in (("coco", tmp_path / "coco.json"), ("yolo", labels)):
        out = tmp_path / f"out_{name}"
        summary = samkit.segment_images(
            [folder], out, model_type="shapes", boxes=source, progress=False
        )
        assert (summary.done, len(summary.failed)) == (2, 1)
        assert summary.failed[0].path.endswith("unlisted.png")
        assert "no boxes" in summary.failed[0].reason
        results[name] = COCO(str(out / "annotations.json"))
    assert results["coco"].dataset["categories"] == coco["categories"]
    assert results["yolo"].dataset["categories"] == [
        {"id": 0, "name": "zero"},
        {"id": 1, "name": "shape"},
    ]
    for i, scene in enumerate(scenes):
        per_source = []
        for result in results.values():
            annotations = result.loadAnns(result.getAnnIds(imgIds=i + 1))
            assert [a["category_id"] for a in annotations] == [1] * len(scene.masks)
            masks = np.array([_decode(a) for a in annotations], dtype=bool)
            per_source.append(masks)
            # the bundled model finds each shape from its box
            ious = [_mask_iou(m, t) for m, t in zip(masks, scene.masks, strict=True)]
            assert min(ious) > 0.5, ious
        # YOLO's rounding of relative coordinates moves a box by far less than a pixel
        ious = [_mask_iou(a, b) for a, b in zip(*per_source, strict=True)]
        assert min(ious) > 0.95, ious


def test_generator_settings_with_boxes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(json.dumps({"image": "a", "detections": []}))
    with pytest.raises(SegmentUsageError, match="generator settings apply to automatic masks"):
        samkit.segment_images(
            [tmp_path], tmp_path.parent / "o", boxes=tmp_path / "b.json", points_per_side=4
        )


def test_fast_is_passed_on_to_load_sam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, Any]] = []

    class Stop(Exception):
        pass

    def load_sam(model_type: str | None = None, **kwargs: Any) -> Any:
        asked.append(kwargs)
        raise Stop

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    monkeypatch.setattr(samkit, "load_sam", load_sam)
    with pytest.raises(Stop):
        samkit.segment_images([folder], tmp_path / "o", fast=True, progress=False)
    assert [kwargs.get("fast") for kwargs in asked] == [True]  # never silently ignored


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{in}", "--out", "{in}"], "is inside the input folder"),  # the input itself
        (["{in}", "--out", "{in}/sub/out"], "is inside the input folder"),
        (["{in}/*.png", "--out", "{in}/o"], "is inside .* where the glob"),
        (["{in}/missing.png", "--out", "{tmp}/o"], "input not found: .*missing.png"),
        (["{in}", "--out", "{in}/a.png"], "--out must be a folder, but .*a.png is a file"),
        (["{in}", "--out", "{tmp}/o", "--engine", "spark"], None),  # argparse refuses
        (["{in}", "--out", "{tmp}/o", "--model", "vit_x"], "model_type must be one of"),
        (["{in}", "--out", "{tmp}/o", "--points-per-side", "x"], None),
        (["{in}", "--out", "{tmp}/o", "--boxes", "{tmp}/none.json"], "box file not found"),
        (["{tmp}/in/a.png", "{tmp}/in2/a.png", "--out", "{tmp}/o"], "the same file_name 'a.png'"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str | None
) -> None:
    for name in ("in", "in2"):
        (tmp_path / name).mkdir()
        Image.fromarray(_scene(1).image).save(tmp_path / name / "a.png")
    filled = [a.format(tmp=tmp_path, **{"in": tmp_path / "in"}) for a in args]
    if message is None:
        with pytest.raises(SystemExit) as exited:
            main(["segment", *filled])
        assert exited.value.code == 2
        return
    assert main(["segment", *filled, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("samkit segment: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "o").exists()


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


def test_an_empty_folder_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    summary = samkit.segment_images([tmp_path / "empty"], tmp_path / "out", progress=False)
    assert (summary.done, summary.skipped) == (0, 0)
    assert [f.reason for f in summary.failed] == ["empty folder: no files found"]
    assert COCO(str(tmp_path / "out" / "annotations.json")).dataset["images"] == []


_RUN = "import sys; from samkit.cli import main; sys.exit(main(sys.argv[1:]))"


def test_resume_after_kill_9(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    _scenes_folder(folder, 8, size=(96, 128))
    out = tmp_path / "out"
    command = [sys.executable, "-c", _RUN, "segment", str(folder), "--out", str(out), *FAST]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = out / ".samkit" / "images"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if store.is_dir() and len(list(store.glob("*.json"))) >= 2:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = len(list(store.glob("*.json")))
    assert 2 <= finished < 8
    assert not (out / "annotations.json").exists()
    summary = samkit.segment_images(
        [folder], out, model_type="shapes", device="cpu", points_per_side=4, progress=False
    )
    assert (summary.skipped, summary.done, summary.failed) == (finished, 8 - finished, [])
    coco = COCO(str(out / "annotations.json"))
    assert len(coco.dataset["images"]) == 8
    assert not list(store.glob(".*.tmp"))  # the temp file of the image in flight is removed


def test_summary_text() -> None:
    summary = samkit.segment.SegmentSummary(
        done=3,
        skipped=1,
        failed=[samkit.segment_job.Failure("a.txt", "cannot read")],
        annotations_file=Path("o/annotations.json"),
        images=4,
        annotations=9,
        seconds=1.5,
        no_masks=["gray.png"],
    )
    assert str(summary).splitlines() == [
        "done 3, skipped 1, failed 1",
        "  failed: a.txt: cannot read",
        "  no masks: gray.png (nothing passed the filters; a blank image gives none)",
        "4 images, 9 masks -> o/annotations.json",
        "2.00 images/s (1.5 s, local engine)",
    ]
    assert not summary.ok


@pytest.mark.parametrize("fast", [False, True])
def test_fast_segments_with_the_fast_mask_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    from samkit.generator import MaskGenerator
    from samkit.segment_job import ImageWorker, JobSpec

    asked: list[dict[str, Any]] = []
    plain = samkit.load_sam("shapes", device="cpu")

    def load_sam(model_type: str | None = None, **kwargs: Any) -> Any:
        asked.append(kwargs)
        return plain

    monkeypatch.setattr(samkit, "load_sam", load_sam)
    spec = JobSpec(str(tmp_path), "shapes", None, "cpu", fast, "amg", {}, False, False)
    worker = ImageWorker(spec)
    expected = samkit.FastMaskGenerator if fast else MaskGenerator
    assert type(worker.generator) is expected
    assert [kwargs.get("fast", False) for kwargs in asked] == [fast]
