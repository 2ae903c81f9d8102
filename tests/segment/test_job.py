"""The segment job, run for real with the bundled ``shapes`` model on small scenes."""

from __future__ import annotations

import contextlib
import io
import json
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

from samkit.cli import main
from samkit.generator import MaskGenerator
from samkit.segment import job
from samkit.segment.job import pending_items, run_local, segment_images
from samkit.segment.spec import ImageItem, JobSpec, SegmentSummary, SegmentUsageError
from samkit.shapes import make_scene

from .support import FAST, SIZE, decode, scene, scenes_folder


def _rotated_jpeg(path: Path) -> None:
    """A 64x80 (wide) JPEG stored with EXIF orientation 6: load_image gives it 80x64."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(scene(6).image).save(path, exif=exif, quality=95)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PNG, JPEG, grayscale, 16-bit, RGBA, EXIF-rotated, a corrupt file, a text file."""
    folder = tmp_path_factory.mktemp("mixed") / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(scene(1).image).save(folder / "rgb.png")
    Image.fromarray(scene(2).image).save(folder / "photo.jpg", quality=95)
    Image.fromarray(scene(3).image).convert("L").save(folder / "gray.png")
    deep = (scene(4).image[:, :, 0].astype(np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep.png")
    rgba = np.dstack([scene(5).image, np.full(SIZE, 200, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(folder / "alpha.png")
    _rotated_jpeg(folder / "rotated.jpg")
    Image.fromarray(scene(7).image).save(folder / "sub" / "rgb.png")  # same base name
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_masks_are_at_each_image_own_size_upright(mixed_run: tuple[int, str, Path]) -> None:
    _, _, out = mixed_run
    coco = COCO(str(out / "annotations.json"))
    for image in coco.dataset["images"]:
        expected = (80, 64) if image["file_name"] == "rotated.jpg" else SIZE
        assert (image["height"], image["width"]) == expected, image
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            mask = decode(annotation)
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


@pytest.mark.slow
def test_rerun_skips_what_is_done(mixed_folder: Path, mixed_run: tuple[int, str, Path]) -> None:
    _, _, out = mixed_run
    before = (out / "annotations.json").read_text()
    summary = segment_images(
        [mixed_folder], out, model_type="shapes", device="cpu", points_per_side=4, progress=False
    )
    assert (summary.done, summary.skipped, len(summary.failed)) == (0, 7, 2)
    assert json.loads((out / "annotations.json").read_text()) == json.loads(before)


@pytest.mark.slow
def test_the_run_summary_is_stored(mixed_run: tuple[int, str, Path]) -> None:
    _, _, out = mixed_run
    stored = json.loads((out / ".samkit" / "summary.json").read_text())
    # the rerun above may have written it last: both runs report the same images
    assert stored["images"] == len(GOOD)
    assert stored["engine"] == "local"
    assert sorted(Path(f["path"]).name for f in stored["failed"]) == ["corrupt.jpg", "notes.txt"]
    info = json.loads((out / "annotations.json").read_text())["info"]
    assert info["settings"]["amg"]["points_per_side"] == 4


def test_generator_settings_with_boxes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(json.dumps({"image": "a", "detections": []}))
    with pytest.raises(SegmentUsageError, match="generator settings apply to automatic masks"):
        segment_images(
            [tmp_path], tmp_path.parent / "o", boxes=tmp_path / "b.json", points_per_side=4
        )


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
        Image.fromarray(scene(1).image).save(tmp_path / name / "a.png")
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
    ("kwargs", "message"),
    [
        ({"engine": "spark"}, "engine must be one of local, ray, but got 'spark'"),
        ({"png": "yes"}, "png must be True or False, but got 'yes'"),
        ({"progress": 1}, "progress must be True or False, but got 1"),
        ({"out_dir": " "}, "out_dir must be a folder path, but got ' '"),
        ({"checkpoint": "{tmp}/none.pt"}, "checkpoint file not found: .*none.pt"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    Image.fromarray(scene(1).image).save(tmp_path / "a.png")
    given = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in kwargs.items()}
    out_dir = given.pop("out_dir", tmp_path.parent / f"{tmp_path.name}-out")
    with pytest.raises(SegmentUsageError, match=message):
        segment_images([tmp_path / "a.png"], out_dir, model_type="shapes", **given)
    assert not Path(tmp_path.parent / f"{tmp_path.name}-out").exists()


def test_an_empty_folder_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    summary = segment_images([tmp_path / "empty"], tmp_path / "out", progress=False)
    assert (summary.done, summary.skipped) == (0, 0)
    assert [f.reason for f in summary.failed] == ["empty folder: no files found"]
    assert COCO(str(tmp_path / "out" / "annotations.json")).dataset["images"] == []


def test_run_local_loads_no_model_for_no_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_worker(spec: JobSpec) -> None:
        raise AssertionError("a model was loaded for nothing")

    monkeypatch.setattr(job, "ImageWorker", no_worker)
    reported: list[Any] = []
    spec = JobSpec(str(tmp_path), "shapes", None, "cpu", False, "amg", {}, False, False)
    run_local(spec, [], lambda item, failure: reported.append((item, failure)))
    assert reported == []


def test_pending_items_counts_the_done_as_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [ImageItem(str(tmp_path / f"{n}.png"), f"{n}.png", n, n) for n in "abc"]
    monkeypatch.setattr(job, "is_done", lambda out, item, formats: item.key == "b")
    summary = SegmentSummary()
    assert pending_items(tmp_path, items, summary) == [items[0], items[2]]
    assert summary.skipped == 1
    assert pending_items(tmp_path, [], summary) == []  # empty: nothing pending


_RUN = "import sys; from samkit.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.slow  # a child process segments, is killed and resumed
def test_resume_after_kill_9(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    scenes_folder(folder, 8, size=(96, 128))
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
    summary = segment_images(
        [folder], out, model_type="shapes", device="cpu", points_per_side=4, progress=False
    )
    assert (summary.skipped, summary.done, summary.failed) == (finished, 8 - finished, [])
    coco = COCO(str(out / "annotations.json"))
    assert len(coco.dataset["images"]) == 8
    assert not list(store.glob(".*.tmp"))  # the temp file of the image in flight is removed


# --- blank and hard images: zero masks and a line, never a crash ---------------------

#: The bundled model on the CPU, a coarse grid, no progress bar.
BASE = ["--model", "shapes", "--device", "cpu", "--points-per-side", "4", "--no-progress"]

#: Settings that used to crash on a blank image, or that make every mask fail a filter.
HARD_SETTINGS = [
    # crops and a threshold no mask passes: segment-anything's IndexError (issue 614)
    ["--crop-n-layers", "1", "--pred-iou-thresh", "0.999"],
    # two crop layers and an unreachable stability
    ["--crop-n-layers", "2", "--stability-score-thresh", "0.9999"],
    # small-region cleaning with crops
    ["--crop-n-layers", "1", "--min-mask-region-area", "100"],
]


def _run_hard(folder: Path, out: Path, settings: list[str]) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["segment", str(folder), "--out", str(out), *BASE, *settings])
    return status, stdout.getvalue(), stderr.getvalue()


def _masks_by_file(out: Path) -> dict[str, list[Any]]:
    coco = json.loads((out / "annotations.json").read_text())
    names = {image["id"]: image["file_name"] for image in coco["images"]}
    found: dict[str, list[Any]] = {name: [] for name in names.values()}
    for annotation in coco["annotations"]:
        found[names[annotation["image_id"]]].append(annotation["segmentation"])
    return found


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder with a uniform gray image and a scene, and one with the scene alone."""
    root = tmp_path_factory.mktemp("blank")
    shapes = make_scene(11, height=96, width=128, n_shapes=3, min_size=0.3)
    for name, images in (("both", ["gray", "scene"]), ("alone", ["scene"])):
        (root / name).mkdir()
        for image in images:
            pixels = np.full((96, 128, 3), 128, np.uint8) if image == "gray" else shapes.image
            Image.fromarray(pixels).save(root / name / f"{image}.png")
    return root / "both", root / "alone"


@pytest.mark.slow
@pytest.mark.parametrize("settings", HARD_SETTINGS)
def test_a_blank_image_gets_no_mask_and_a_line(
    folders: tuple[Path, Path], tmp_path: Path, settings: list[str]
) -> None:
    both, alone = folders
    status, printed, errors = _run_hard(both, tmp_path / "both", settings)
    assert status == 0, errors
    assert "Traceback" not in printed + errors
    assert "done 2, skipped 0, failed 0" in printed
    masks = _masks_by_file(tmp_path / "both")
    assert masks["gray.png"] == []
    assert "  no masks: gray.png (nothing passed the filters; a blank image gives none)" in printed
    # the other image is unaffected: the same masks as when it is segmented alone
    assert _run_hard(alone, tmp_path / "alone", settings)[0] == 0
    assert masks["scene.png"] == _masks_by_file(tmp_path / "alone")["scene.png"]
    summary = json.loads((tmp_path / "both" / ".samkit" / "summary.json").read_text())
    assert "gray.png" in summary["no_masks"]


@pytest.mark.slow
def test_no_threshold_at_all_keeps_no_empty_mask(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    # every candidate passes: on the gray image those are masks of no pixel, whose
    # stability is 0/0 (NaN); they are left out, and the run goes through
    no_threshold = ["--pred-iou-thresh", "0", "--stability-score-thresh", "0"]
    settings = [*no_threshold, "--min-mask-region-area", "50"]
    status, printed, errors = _run_hard(folders[0], tmp_path / "out", settings)
    assert (status, errors) == (0, "")
    assert "done 2, skipped 0, failed 0" in printed
    coco = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert coco["annotations"], "the scene has masks"
    assert all(annotation["area"] > 0 for annotation in coco["annotations"])


@pytest.mark.slow
def test_a_failing_image_is_reported_and_the_others_are_done(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate = MaskGenerator.generate

    def generate_or_fail(self: MaskGenerator, image: np.ndarray) -> list[dict[str, Any]]:
        if np.all(image == 128):
            raise RuntimeError("out of memory on the gray one")
        return generate(self, image)

    monkeypatch.setattr(MaskGenerator, "generate", generate_or_fail)
    status, printed, errors = _run_hard(folders[0], tmp_path / "out", [])
    assert status == 1, "the exit status says an image failed"
    assert "Traceback" not in printed + errors
    assert "done 1, skipped 0, failed 1" in printed
    assert "gray.png: RuntimeError: out of memory on the gray one" in printed
    assert list(_masks_by_file(tmp_path / "out")) == ["scene.png"]
