import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

import samkit

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trainer():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "train_shapes_model", ROOT / "tools" / "train_shapes_model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_shapes_model"] = module
    spec.loader.exec_module(module)
    return module


def _train(trainer, out: Path) -> str:  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    try:
        trainer.main(["--steps", "2", "--batch", "1", "--max-masks", "2", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_training_is_deterministic_and_loads_safely(trainer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = _train(trainer, tmp_path / "a" / "m.pt")
    second = _train(trainer, tmp_path / "b" / "m.pt")
    assert first == second
    meta = json.loads((tmp_path / "a" / "m.json").read_text())
    assert meta["sha256"] == first
    assert meta["steps"] == 2
    # the checkpoint loads through the same safe path as the official weights
    sam = samkit.load_sam("shapes", checkpoint=tmp_path / "a" / "m.pt", device="cpu")
    assert not sam.training


def test_loss_prefers_the_right_mask(trainer) -> None:  # type: ignore[no-untyped-def]
    target = torch.zeros(1, 16, 16)
    target[:, 4:12, 4:12] = 1
    good = (target * 2 - 1) * 10
    bad = -good
    assert trainer.mask_loss(good, target) < trainer.mask_loss(bad, target)
    assert trainer.hard_iou(good, target).item() == 1.0
    assert trainer.hard_iou(bad, target).item() == 0.0
