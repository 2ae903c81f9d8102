import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import samkit
from samkit.model import build_shapes_sam

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trainer():  # type: ignore[no-untyped-def]
    # on the path, so that the training processes it spawns can import it too
    sys.path.insert(0, str(ROOT / "tools"))
    spec = importlib.util.spec_from_file_location(
        "train_shapes_model", ROOT / "tools" / "train_shapes_model.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_shapes_model"] = module
    spec.loader.exec_module(module)
    return module


def _train(trainer, out: Path, workers: int, procs: int = 1) -> str:  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    args = ["--steps", "2", "--batch", "2", "--max-masks", "2", "--exact-boxes", "0.5"]
    try:
        trainer.main(
            [*args, "--procs", str(procs), "--data-workers", str(workers), "--out", str(out)]
        )
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)
        torch.set_flush_denormal(False)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_training_is_deterministic_and_loads_safely(trainer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the same checkpoint whether the scenes come from a helper process or not
    first = _train(trainer, tmp_path / "a" / "m.pt", workers=1)
    second = _train(trainer, tmp_path / "b" / "m.pt", workers=0)
    assert first == second
    meta = json.loads((tmp_path / "a" / "m.json").read_text())
    assert meta["sha256"] == first
    assert meta["steps"] == 2
    # the training scenes default to the model's input side
    assert meta["scene_size"] == samkit.model.SHAPES_CONFIG.image_size
    # the checkpoint loads through the same safe path as the official weights
    sam = samkit.load_sam("shapes", checkpoint=tmp_path / "a" / "m.pt", device="cpu")
    assert not sam.training


def test_two_training_processes_are_deterministic(trainer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # two processes, each with half of every step's images, averaging their gradients:
    # the same checkpoint on every run, with or without the helper processes
    first = _train(trainer, tmp_path / "a" / "m.pt", workers=0, procs=2)
    second = _train(trainer, tmp_path / "b" / "m.pt", workers=1, procs=2)
    assert first == second
    meta = json.loads((tmp_path / "a" / "m.json").read_text())
    assert meta["procs"] == 2 and meta["sha256"] == first
    # the split changes the prompts each image gets, so the weights differ from one process
    assert first != _train(trainer, tmp_path / "c" / "m.pt", workers=0, procs=1)


def test_batch_must_split_evenly_between_processes(trainer, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        trainer.main(["--batch", "3", "--procs", "2", "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert "--batch must be a multiple of --procs" in err and "got --batch 3 and --procs 2" in err
    assert not (tmp_path / "m.pt").exists()


def test_loss_prefers_the_right_mask(trainer) -> None:  # type: ignore[no-untyped-def]
    target = torch.zeros(1, 16, 16)
    target[:, 4:12, 4:12] = 1
    good = (target * 2 - 1) * 10
    bad = -good
    assert trainer.mask_loss(good, target) < trainer.mask_loss(bad, target)
    assert trainer.hard_iou(good, target).item() == 1.0
    assert trainer.hard_iou(bad, target).item() == 0.0


def test_batched_decode_matches_the_stock_decoder(trainer) -> None:  # type: ignore[no-untyped-def]
    """Prompts of several images in one call give what the stock decoder gives per image."""
    torch.manual_seed(0)
    sam = build_shapes_sam()
    size = sam.prompt_encoder.image_embedding_size
    embeddings = torch.randn(2, sam.prompt_encoder.embed_dim, *size)
    boxes = torch.tensor([[10.0, 20.0, 120.0, 90.0], [50.0, 60.0, 200.0, 250.0], [0, 0, 255, 255]])
    image = torch.tensor([0, 1, 1])
    with torch.no_grad():
        batched, batched_iou = trainer.decode(sam, embeddings[image], None, boxes, None)
        for k in range(len(boxes)):
            sparse, dense = sam.prompt_encoder(points=None, boxes=boxes[k : k + 1], masks=None)
            stock, stock_iou = sam.mask_decoder.predict_masks(
                image_embeddings=embeddings[image[k] : image[k] + 1],
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
            )
            torch.testing.assert_close(batched[k : k + 1], stock, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(batched_iou[k : k + 1], stock_iou, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("exact", "moved"), [(0.0, 3), (1.0, 0)])
def test_box_noise_leaves_the_exact_share_tight(trainer, exact: float, moved: int) -> None:  # type: ignore[no-untyped-def]
    boxes = torch.tensor([[10.0, 20.0, 120.0, 90.0]] * 3)
    noisy = trainer.jitter_boxes(boxes, np.random.default_rng(0), exact)
    assert int((noisy != boxes).any(dim=1).sum()) == moved
    assert float((noisy - boxes).abs().max()) <= 6.0


def test_scene_specs_are_fixed_by_seed_and_step(trainer) -> None:  # type: ignore[no-untyped-def]
    first = trainer.scene_specs(0, 5, 4, 256)
    assert first == trainer.scene_specs(0, 5, 4, 256)
    assert first != trainer.scene_specs(0, 6, 4, 256)
    assert [seed for seed, _, _ in first] == [trainer.TRAIN_SEED_OFFSET + 20 + b for b in range(4)]
    for _, height, width in first:
        assert 256 <= max(height, width) <= 512
        assert 0.55 * max(height, width) - 1 <= min(height, width)


@pytest.mark.parametrize(("box_fix", "calls"), [(True, 4), (False, 3)])
def test_box_fix_round_is_optional(trainer, monkeypatch, box_fix: bool, calls: int) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    sam = build_shapes_sam()
    items = [trainer.Batch(sam, samkit.shapes.make_scene(seed, 300, 200)) for seed in (1, 2)]
    seen = []
    decode = trainer.decode

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(args[3] is not None)  # a box prompt
        return decode(*args, **kwargs)

    monkeypatch.setattr(trainer, "decode", counting)
    with torch.no_grad():
        embeddings = sam.image_encoder(torch.stack([it.input for it in items]))
        loss, stats = trainer.batch_loss(
            sam, embeddings, items, np.random.default_rng(0), 6, box_fix=box_fix
        )
    assert len(seen) == calls
    assert seen == [True, False, False, True][:calls]
    assert torch.isfinite(loss) and set(stats) == {"box_iou", "point_iou", "corrected_iou"}
