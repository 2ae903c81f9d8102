"""``samkit finetune``: usage errors, bad data and a real run, through ``samkit.cli.main``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from samkit.cli import main


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a busy CPU far faster than two that wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prompts", "box,mask"], "usage error: prompts must be a non-empty choice of box"),
        (["--val-fraction", "1.5"],
         "usage error: val_fraction must be a finite number in [0.0, 1.0), but got 1.5"),
        (["--epochs", "0"], "samkit finetune: usage error: epochs must be an int >= 1, but got 0"),
        (["--lr", "nan"], "samkit finetune: usage error: lr must be a finite number"),
        (["--anchor", "-1"], "usage error: anchor must be a finite number in [0.0, inf)"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(
    ring_coco: Path, tmp_path: Path, capsys, extra: list[str], message: str
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "m.pth"
    assert main(["finetune", str(ring_coco), "--model", "shapes", "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_wrong_out_name_and_a_missing_flag_are_usage_errors(ring_coco: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["finetune", str(ring_coco), "--out", "m.txt"]) == 2
    assert "out must be the path of a .pth or .pt file, but got 'm.txt'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", str(ring_coco)])  # no --out
    assert exit_info.value.code == 2
    assert "the following arguments are required: --out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["finetune", str(ring_coco), "--out", "m.pth", "--language", "fr"])
    assert exit_info.value.code == 2
    assert "argument --language: invalid choice: 'fr'" in capsys.readouterr().err


def test_bad_data_exits_1_and_says_what(ring_coco: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "data"
    shutil.copytree(ring_coco.parent, folder)
    (folder / "images" / "anillos_00502.png").unlink()
    code = main(["finetune", str(folder / "annotations.json"), "--model", "shapes",
                 "--out", str(tmp_path / "m.pth"), "--no-progress"])  # fmt: skip
    assert code == 1
    assert (
        "samkit finetune: error: image 'images/anillos_00502.png' not found"
        in capsys.readouterr().err
    )


@pytest.mark.slow  # a short training run
def test_a_run_writes_the_checkpoint_and_its_record(
    ring_coco: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "m.pth"
    args = ["finetune", str(ring_coco), "--images", str(ring_coco.parent), "--model", "shapes",
            "--out", str(out), "--epochs", "1", "--prompts", "box", "--seed", "3", "--anchor", "50",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fine-tuned shapes on 5 images (1 held out)" in printed and str(out) in printed
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["settings"]["prompts"] == ["box"] and record["settings"]["seed"] == 3
    assert record["settings"]["anchor"] == 50.0
    assert main(args) == 1  # the state is there: --resume or --overwrite
    assert "pass resume=True (samkit finetune --resume)" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    capsys.readouterr()
    spanish = [*args[:-1], "--overwrite", "--language", "es"]  # progress shown, in Spanish
    assert main(spanish) == 0
    shown = capsys.readouterr().err
    assert "época 1/1" in shown and "época 1: mIoU de validación con caja" in shown
