"""``samkit segment`` on blank and hard images: zero masks and a line, never a crash."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import samkit
from samkit.cli import main
from samkit.generator import MaskGenerator

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


def _run(folder: Path, out: Path, settings: list[str]) -> tuple[int, str, str]:
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
    scene = samkit.shapes.make_scene(11, height=96, width=128, n_shapes=3, min_size=0.3)
    for name, images in (("both", ["gray", "scene"]), ("alone", ["scene"])):
        (root / name).mkdir()
        for image in images:
            pixels = np.full((96, 128, 3), 128, np.uint8) if image == "gray" else scene.image
            Image.fromarray(pixels).save(root / name / f"{image}.png")
    return root / "both", root / "alone"


@pytest.mark.parametrize("settings", HARD_SETTINGS)
def test_a_blank_image_gets_no_mask_and_a_line(
    folders: tuple[Path, Path], tmp_path: Path, settings: list[str]
) -> None:
    both, alone = folders
    status, printed, errors = _run(both, tmp_path / "both", settings)
    assert status == 0, errors
    assert "Traceback" not in printed + errors
    assert "done 2, skipped 0, failed 0" in printed
    masks = _masks_by_file(tmp_path / "both")
    assert masks["gray.png"] == []
    assert "  no masks: gray.png (nothing passed the filters; a blank image gives none)" in printed
    # the other image is unaffected: the same masks as when it is segmented alone
    assert _run(alone, tmp_path / "alone", settings)[0] == 0
    assert masks["scene.png"] == _masks_by_file(tmp_path / "alone")["scene.png"]
    summary = json.loads((tmp_path / "both" / ".samkit" / "summary.json").read_text())
    assert "gray.png" in summary["no_masks"]


def test_no_threshold_at_all_keeps_no_empty_mask(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    # every candidate passes: on the gray image those are masks of no pixel, whose
    # stability is 0/0 (NaN); they are left out, and the run goes through
    no_threshold = ["--pred-iou-thresh", "0", "--stability-score-thresh", "0"]
    settings = [*no_threshold, "--min-mask-region-area", "50"]
    status, printed, errors = _run(folders[0], tmp_path / "out", settings)
    assert (status, errors) == (0, "")
    coco = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert coco["annotations"], "the scene has masks"
    assert all(annotation["area"] > 0 for annotation in coco["annotations"])


def test_a_failing_image_is_reported_and_the_others_are_done(
    folders: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate = MaskGenerator.generate

    def generate_or_fail(self: MaskGenerator, image: np.ndarray) -> list[dict[str, Any]]:
        if np.all(image == 128):
            raise RuntimeError("out of memory on the gray one")
        return generate(self, image)

    monkeypatch.setattr(MaskGenerator, "generate", generate_or_fail)
    status, printed, errors = _run(folders[0], tmp_path / "out", [])
    assert status == 1, "the exit status says an image failed"
    assert "Traceback" not in printed + errors
    assert "done 1, skipped 0, failed 1" in printed
    assert "gray.png: segmentation failed: RuntimeError: out of memory on the gray one" in printed
    assert list(_masks_by_file(tmp_path / "out")) == ["scene.png"]
