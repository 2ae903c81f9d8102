"""The job under careless use: nothing mixed, nothing written before it can start, one
image never stops the run, every JSON strict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from samkit.cli import main
from samkit.locations import data_file
from samkit.model import MODEL_TYPES
from samkit.segment import worker
from samkit.segment.job import segment_images

from .support import FAST, SIZE, scene

QUICK: dict[str, Any] = {"model_type": "shapes", "device": "cpu", "points_per_side": 4}


def _strict(path: Path) -> Any:
    """Parse JSON as a strict parser does: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


@pytest.mark.slow
def test_a_checkpoint_swapped_at_the_same_path_is_not_mixed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(scene(1).image).save(folder / "a.png")
    bundled = data_file(*MODEL_TYPES["shapes"].bundled or ())
    state = torch.load(bundled, map_location="cpu", weights_only=True)
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    other = tmp_path / "other.pt"
    torch.save(state, other)
    checkpoint = tmp_path / "model.pt"
    shutil.copy2(bundled, checkpoint)
    args = ["segment", str(folder), "--out", str(tmp_path / "out"), *FAST]
    assert main([*args, "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    stat = os.stat(checkpoint)
    shutil.copyfile(other, checkpoint)  # another model under the same name
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert main([*args, "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    old, new = (__import__("hashlib").sha256(p.read_bytes()).hexdigest() for p in (bundled, other))
    assert f"(changed: checkpoint.sha256 {old!r} -> {new!r})" in err


@pytest.mark.slow
def test_an_image_replaced_with_its_mtime_restored_is_redone(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    image = folder / "a.bmp"  # BMP: another picture of the same size is the same bytes long
    Image.fromarray(scene(1).image).save(image)
    out = tmp_path / "out"
    first = segment_images([folder], out, progress=False, **QUICK)
    masks = json.loads((out / "annotations.json").read_text())["annotations"]
    stat = os.stat(image)
    Image.fromarray(scene(5).image).save(tmp_path / "b.bmp")
    shutil.copyfile(tmp_path / "b.bmp", image)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as cp -p and rsync -a do
    assert os.stat(image).st_size == stat.st_size
    second = segment_images([folder], out, progress=False, **QUICK)
    assert (first.done, second.done, second.skipped) == (1, 1, 0)
    assert json.loads((out / "annotations.json").read_text())["annotations"] != masks


@pytest.mark.slow
def test_a_failed_start_writes_nothing_and_the_fix_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(scene(1).image).save(folder / "a.png")
    out = tmp_path / "out"
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"\x80\x02 not a checkpoint at all" * 40)
    args = ["segment", str(folder), "--out", str(out), *FAST]
    assert main([*args, "--checkpoint", str(broken)]) == 1
    assert "samkit segment: error: " in capsys.readouterr().err
    assert not out.exists()  # the model did not load: nothing was written
    assert main([*args, "--points-per-side", "0"]) == 2
    assert capsys.readouterr().err == (
        "samkit segment: error: points_per_side must be a whole number of at least 1, but got 0\n"
    )
    assert not out.exists()
    assert main(args) == 0  # the corrected command is not refused
    assert "done 1, skipped 0, failed 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        (
            "--points-per-side",
            "0",
            "points_per_side must be a whole number of at least 1, but got 0",
        ),
        ("--crop-n-layers", "-1", "crop_n_layers must be a whole number of at least 0, but got -1"),
        (
            "--points-per-batch",
            "0",
            "points_per_batch must be a whole number of at least 1, but got 0",
        ),
        ("--pred-iou-thresh", "nan", "pred_iou_thresh must be a finite number, but got nan"),
        ("--box-nms-thresh", "1.5", "box_nms_thresh must be from 0 to 1, but got 1.5"),
    ],
)
def test_generator_settings_out_of_range_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path), "--out", str(out), *FAST, flag, value]) == 2
    assert capsys.readouterr().err == f"samkit segment: error: {message}\n"
    assert not out.exists()


def test_an_unwritable_out_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in").mkdir()
    Image.fromarray(scene(1).image).save(tmp_path / "in" / "a.png")
    (tmp_path / "file").write_text("a file")
    args = ["segment", str(tmp_path / "in"), *FAST, "--out"]
    assert main([*args, str(tmp_path / "file" / "out")]) == 2
    assert capsys.readouterr().err == (
        f"samkit segment: error: --out {tmp_path / 'file' / 'out'} cannot be created: "
        f"{tmp_path / 'file'} is a file, not a folder\n"
    )
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, m: False if Path(p) == tmp_path else real_access(p, m)
    )
    assert main([*args, str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"samkit segment: error: --out {tmp_path / 'out'} cannot be created in {tmp_path} "
        "(permission denied): choose a folder you can write to\n"
    )
    monkeypatch.undo()
    assert main([*args, "/sys/samkit-out"]) == 2  # refused by the kernel, even to root
    assert capsys.readouterr().err == (
        "samkit segment: error: cannot write to --out /sys/samkit-out: Operation not permitted\n"
    )


@pytest.mark.slow
def test_one_image_never_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "big.png", "z.png"):
        Image.fromarray(scene(len(name)).image).save(folder / name)
    Image.fromarray(np.zeros((1, 1000, 3), np.uint8)).save(folder / "thin.png")
    (folder / "link.png").symlink_to(tmp_path / "gone.png")
    real_segment = worker.ImageWorker.segment

    def segment(self: worker.ImageWorker, image: np.ndarray, item: Any) -> Any:
        if item.file_name == "big.png":
            raise MemoryError
        if item.file_name == "z.png":
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_segment(self, image, item)

    monkeypatch.setattr(worker.ImageWorker, "segment", segment)
    summary = segment_images([folder], tmp_path / "out", progress=False, **QUICK)
    reasons = {Path(f.path).name: f.reason for f in summary.failed}
    assert (summary.done, summary.skipped, len(summary.failed)) == (1, 0, 4)
    assert reasons == {
        "big.png": (
            "out of memory while segmenting it (MemoryError): the image is too large for this "
            "machine at these settings; try a smaller --points-per-batch or a smaller copy of "
            "the image"
        ),
        "link.png": f"a broken symbolic link: its target {tmp_path / 'gone.png'} does not exist",
        "thin.png": (
            "the image is 1x1000 pixels (height x width), too thin to segment: SAM resizes its "
            "longest side to 384 pixels, which makes the other 0; it must be at least 1 pixel "
            "for every 768 of the longest side"
        ),
        "z.png": "RuntimeError: CUDA error: an illegal memory access was encountered",
    }
    assert [f.path for f in summary.failed if f.path.endswith("link.png")] == [
        str(folder / "link.png")  # under its own name, not its target's
    ]
    assert "done 1, skipped 0, failed 4" in str(summary)
    stored = _strict(tmp_path / "out" / ".samkit" / "summary.json")
    assert (stored["done"], len(stored["failed"])) == (1, 4)


_RUN = "import sys; from samkit.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.slow
def test_a_fifo_among_the_inputs_does_not_hang_the_run(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(scene(1).image).save(folder / "a.png")
    os.mkfifo(folder / "pipe.png")
    command = [sys.executable, "-c", _RUN, "segment", str(folder), "--out", str(tmp_path / "o")]
    done = subprocess.run(
        [*command, *FAST], capture_output=True, text=True, timeout=240, check=False
    )
    assert done.returncode == 1, done.stderr
    assert (
        f"  failed: {folder / 'pipe.png'}: a named pipe (FIFO), not an image file: samkit "
        "segment reads regular files only"
    ) in done.stdout
    assert "done 1, skipped 0, failed 1" in done.stdout


@pytest.mark.slow
def test_a_nan_score_is_written_as_null(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(scene(1).image).save(folder / "a.png")
    yolo = tmp_path / "yolo"
    yolo.mkdir()
    (yolo / "a.txt").write_text("0 0.5 0.5 0.4 0.4 nan\n1 0.3 0.3 0.2 0.2 0.9\n")
    out = tmp_path / "out"
    summary = segment_images([folder], out, boxes=yolo, model_type="shapes", progress=False)
    assert summary.done == 1
    content = _strict(out / "annotations.json")
    assert [a["score"] for a in content["annotations"]] == [None, pytest.approx(0.9)]
    for path in (out / ".samkit").rglob("*.json"):
        _strict(path)
    assert (content["images"][0]["height"], content["images"][0]["width"]) == SIZE
