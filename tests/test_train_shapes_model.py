import contextlib
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import samkit
from samkit.model import build_shapes_sam
from tools import train_shapes_model as trainer

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "data" / "models" / "sam_shapes.json"


def _torch_settings() -> tuple[object, ...]:
    return (
        torch.get_num_threads(),
        trainer.flush_denormal_enabled(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.get_rng_state(),
    )


def _assert_same_settings(before: tuple[object, ...], after: tuple[object, ...]) -> None:
    assert before[:4] == after[:4]
    assert torch.equal(before[4], after[4])  # type: ignore[arg-type]


def _train(out: Path, workers: int, procs: int = 1) -> str:
    args = ["--steps", "2", "--batch", "2", "--max-masks", "2", "--exact-boxes", "0.5"]
    # settings the trainer changes, set to other values: it must put them back
    torch.set_num_threads(2)
    torch.manual_seed(123)
    before = _torch_settings()
    trainer.main([*args, "--procs", str(procs), "--data-workers", str(workers), "--out", str(out)])
    _assert_same_settings(before, _torch_settings())
    return hashlib.sha256(out.read_bytes()).hexdigest()


def test_recipe_defaults_are_the_shipped_run() -> None:
    record = json.loads(RECORD.read_text())
    recipe = trainer.Recipe()
    # the record holds the architecture itself under "config", checked below
    recorded = {f.name for f in dataclasses.fields(recipe)} & set(record) - {"config"}
    assert len(recorded) == 13 and {"steps", "scene_size", "box_fix", "init"} <= recorded
    assert {name: getattr(recipe, name) for name in recorded} == {
        name: record[name] for name in recorded
    }
    config = json.loads(json.dumps(dataclasses.asdict(recipe.model_config())))
    assert config == record["config"]
    assert recipe.out == Path("data/models/sam_shapes.pt")
    assert recipe.data_workers == 0


def test_command_line_defaults_come_from_the_recipe() -> None:
    assert trainer.Recipe(**vars(trainer.parser().parse_args([]))) == trainer.Recipe()


@pytest.mark.parametrize(
    ("argv", "changed"),
    [
        ([], {}),
        (["--steps", "7", "--box-fix", "1"], {"steps": 7, "box_fix": 1}),
        (["--lr", "0.5", "--init", "a.pt"], {"lr": 0.5, "init": Path("a.pt")}),
        (["--config", '{"encoder_depth": 2}'], {"config": '{"encoder_depth": 2}'}),
        (["--snapshot-dir", "snaps"], {"snapshot_dir": Path("snaps")}),
    ],
)
def test_flags_change_only_their_field(argv: list[str], changed: dict[str, object]) -> None:
    recipe = trainer.Recipe(**vars(trainer.parser().parse_args(argv)))
    assert recipe == dataclasses.replace(trainer.Recipe(), **changed)


def test_recipe_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        trainer.Recipe().steps = 1  # type: ignore[misc]


def test_config_overrides_change_the_architecture() -> None:
    assert trainer.Recipe().model_config() == samkit.model.SHAPES_CONFIG
    config = trainer.Recipe(config='{"encoder_depth": 2, "encoder_global_attn_indexes": [0, 1]}')
    assert config.model_config().encoder_depth == 2
    assert config.model_config().encoder_global_attn_indexes == (0, 1)


def test_make_shapes_model_runs_the_recipe_without_flags() -> None:
    makefile = (ROOT / "Makefile").read_text().splitlines()
    start = makefile.index(next(line for line in makefile if line.startswith("shapes-model:")))
    assert makefile[start + 1].strip() == "$(BIN)/python -m tools.train_shapes_model"


def test_flush_denormal_state_is_read_back() -> None:
    try:
        supported = torch.set_flush_denormal(True)
        assert trainer.flush_denormal_enabled() is supported
        torch.set_flush_denormal(False)
        assert trainer.flush_denormal_enabled() is False
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize("fails", [False, True])
def test_torch_settings_are_restored(fails: bool) -> None:
    torch.set_num_threads(2)
    torch.manual_seed(7)
    before = _torch_settings()
    with pytest.raises(RuntimeError, match="stop") if fails else contextlib.nullcontext():
        with trainer.torch_settings_restored():
            torch.set_num_threads(1)
            torch.set_flush_denormal(True)
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.manual_seed(0)
            torch.rand(3)
            assert _torch_settings()[:4] != before[:4]
            if fails:
                raise RuntimeError("stop")
    _assert_same_settings(before, _torch_settings())


@pytest.mark.slow
def test_training_is_deterministic_and_loads_safely(tmp_path: Path) -> None:
    # the same checkpoint whether the scenes come from a helper process or not
    first = _train(tmp_path / "a" / "m.pt", workers=1)
    second = _train(tmp_path / "b" / "m.pt", workers=0)
    assert first == second
    meta = json.loads((tmp_path / "a" / "m.json").read_text())
    assert meta["sha256"] == first
    assert meta["steps"] == 2
    # what was not given on the command line is the shipped recipe
    assert meta["scene_size"] == trainer.Recipe().scene_size
    assert meta["box_fix"] == trainer.Recipe().box_fix
    # the checkpoint loads through the same safe path as the official weights
    sam = samkit.load_sam("shapes", checkpoint=tmp_path / "a" / "m.pt", device="cpu")
    assert not sam.training


@pytest.mark.slow
def test_two_training_processes_are_deterministic(tmp_path: Path) -> None:
    # two processes, each with half of every step's images, averaging their gradients:
    # the same checkpoint on every run, with or without the helper processes
    first = _train(tmp_path / "a" / "m.pt", workers=0, procs=2)
    second = _train(tmp_path / "b" / "m.pt", workers=1, procs=2)
    assert first == second
    meta = json.loads((tmp_path / "a" / "m.json").read_text())
    assert meta["procs"] == 2 and meta["sha256"] == first
    # the split changes the prompts each image gets, so the weights differ from one process
    assert first != _train(tmp_path / "c" / "m.pt", workers=0, procs=1)


def test_batch_must_split_evenly_between_processes(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        trainer.main(["--batch", "3", "--procs", "2", "--out", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert "--batch must be a multiple of --procs" in err and "got --batch 3 and --procs 2" in err
    assert not (tmp_path / "m.pt").exists()


def test_loss_prefers_the_right_mask() -> None:
    target = torch.zeros(1, 16, 16)
    target[:, 4:12, 4:12] = 1
    good = (target * 2 - 1) * 10
    bad = -good
    assert trainer.mask_loss(good, target) < trainer.mask_loss(bad, target)
    assert trainer.hard_iou(good, target).item() == 1.0
    assert trainer.hard_iou(bad, target).item() == 0.0


@pytest.mark.slow
def test_batched_decode_matches_the_stock_decoder() -> None:
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
def test_box_noise_leaves_the_exact_share_tight(exact: float, moved: int) -> None:
    boxes = torch.tensor([[10.0, 20.0, 120.0, 90.0]] * 3)
    noisy = trainer.jitter_boxes(boxes, np.random.default_rng(0), exact)
    assert int((noisy != boxes).any(dim=1).sum()) == moved
    assert float((noisy - boxes).abs().max()) <= 6.0


def test_scene_specs_are_fixed_by_seed_and_step() -> None:
    first = trainer.scene_specs(0, 5, 4, 256)
    assert first == trainer.scene_specs(0, 5, 4, 256)
    assert first != trainer.scene_specs(0, 6, 4, 256)
    assert [seed for seed, _, _ in first] == [trainer.TRAIN_SEED_OFFSET + 20 + b for b in range(4)]
    for _, height, width in first:
        assert 256 <= max(height, width) <= 512
        assert 0.55 * max(height, width) - 1 <= min(height, width)


@pytest.mark.slow  # a training step: the encoder and three decoder rounds
@pytest.mark.parametrize(("box_fix", "calls"), [(True, 4), (False, 3)])
def test_box_fix_round_is_optional(monkeypatch, box_fix: bool, calls: int) -> None:  # type: ignore[no-untyped-def]
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
