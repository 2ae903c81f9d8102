from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import samkit
from samkit.fast import encoder as fast_encoder
from samkit.files import sha256_file
from samkit.finetune import NonFiniteLossError, finetune, load_dataset
from samkit.finetune import train as train_module
from samkit.finetune.api import record_path, work_dir
from samkit.finetune.train import load_state

EPOCHS = 2


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(ring_coco: Path, out: Path, **kwargs: Any) -> samkit.finetune.FinetuneResult:
    options: dict[str, Any] = {"epochs": EPOCHS, "progress": False, **kwargs}
    return finetune(ring_coco, model_type="shapes", out=out, **options)


@pytest.fixture(scope="module")
def run_shown(
    ring_coco: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[samkit.finetune.FinetuneResult, str]:
    """A short run with its progress shown (the default language), and what it showed."""
    shown = io.StringIO()
    with contextlib.redirect_stderr(shown):
        result = _run(ring_coco, tmp_path_factory.mktemp("run") / "mine.pth", progress=True)
    return result, shown.getvalue()


@pytest.fixture(scope="module")
def run(run_shown: tuple[samkit.finetune.FinetuneResult, str]) -> samkit.finetune.FinetuneResult:
    return run_shown[0]


def _metrics(history: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The history without its timings."""
    return [(h["epoch"], h["box_miou"], h["point_miou"], h["loss"]) for h in history]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_output_is_a_plain_state_dict_that_load_sam_reads(run, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    weights = _weights(run.checkpoint)
    base = samkit.load_sam("shapes", device="cpu").state_dict()
    assert weights.keys() == base.keys()
    assert all(
        torch.equal(weights[k], base[k].float()) for k in base if k.startswith("image_encoder.")
    )
    if run.best_epoch:
        assert any(
            not torch.equal(weights[k], base[k].float())
            for k in base
            if k.startswith("mask_decoder.")
        )
    sam = samkit.load_sam("shapes", checkpoint=run.checkpoint, device="cpu")
    assert all(torch.equal(v, weights[k]) for k, v in sam.state_dict().items())
    # and through SAMKIT_CHECKPOINT, as every notebook loads it
    monkeypatch.setenv("SAMKIT_MODEL", "shapes")
    monkeypatch.setenv("SAMKIT_CHECKPOINT", str(run.checkpoint))
    assert all(
        torch.equal(v, weights[k]) for k, v in samkit.load_sam(device="cpu").state_dict().items()
    )


@pytest.mark.slow
def test_record_beside_it(run, ring_coco: Path) -> None:  # type: ignore[no-untyped-def]
    assert run.record == record_path(run.checkpoint) == run.checkpoint.with_suffix(".json")
    record = json.loads(run.record.read_text())
    dataset = load_dataset(ring_coco)
    assert record["format"] == "samkit-finetune-1" and record["model_type"] == "shapes"
    bundled = samkit.download_checkpoint("shapes")
    assert record["base_checkpoint"] == {"file": bundled.name, "sha256": sha256_file(bundled)}
    assert record["data"]["digest"] == dataset.digest
    assert record["data"]["images"] == 6 and record["data"]["objects"] == dataset.objects
    assert len(record["data"]["val_images"]) == 1 and len(record["data"]["train_images"]) == 5
    assert record["settings"]["epochs"] == EPOCHS and record["settings"]["prompts"] == [
        "box",
        "point",
    ]
    assert record["settings"]["seed"] == 0 and record["settings"]["val_fraction"] == 0.2
    assert [h["epoch"] for h in record["history"]] == list(range(EPOCHS + 1))
    assert record["before"] == record["history"][0] == run.before
    assert record["after"] == record["history"][record["best_epoch"]] == run.after
    assert all(0 <= h["box_miou"] <= 1 and 0 <= h["point_miou"] <= 1 for h in record["history"])
    assert record["output"] == {"file": "mine.pth", "sha256": sha256_file(run.checkpoint)}
    best = max(record["history"], key=lambda h: (h["box_miou"] + h["point_miou"]) / 2)
    assert best["epoch"] == record["best_epoch"] or best == record["history"][0]


@pytest.mark.slow
def test_progress_is_shown_in_spanish_by_default(
    run_shown: tuple[samkit.finetune.FinetuneResult, str],
) -> None:
    shown = run_shown[1]
    assert "embeddings (validación)" in shown and "época 1/2" in shown and "pérdida=" in shown
    for epoch in (1, 2):
        assert f"época {epoch}: mIoU de validación con caja " in shown
    assert "epoch" not in shown and "validation" not in shown


@pytest.mark.slow
def test_embeddings_are_cached_on_disk(run) -> None:  # type: ignore[no-untyped-def]
    assert run.embeddings_computed == 6
    assert len(list((work_dir(run.checkpoint) / "embeddings").glob("*.pt"))) == 6


@pytest.mark.slow
def test_a_second_run_needs_resume_or_overwrite(run, ring_coco: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(
        ValueError, match=r"an earlier run left its state in .*state.pt: pass resume=True"
    ):
        _run(ring_coco, run.checkpoint)
    with pytest.raises(
        ValueError,
        match=r"cannot resume from .*: it was made with other data or "
        r"settings \(seed: 0 then, 1 now\); only epochs and lr may change",
    ):
        _run(ring_coco, run.checkpoint, resume=True, seed=1)


@pytest.mark.slow  # four short training runs
def test_resume_a_finished_run_and_go_on(run, ring_coco: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "copy.pth"
    first = _run(ring_coco, out, epochs=1)
    again = _run(ring_coco, out, epochs=1, resume=True)  # nothing left to train
    assert again.history == first.history and again.embeddings_computed == 0  # from the state
    assert sha256_file(again.checkpoint) == sha256_file(first.checkpoint)
    more = _run(ring_coco, out, epochs=2, resume=True)
    assert [h["epoch"] for h in more.history] == [0, 1, 2] and more.history[:2] == first.history
    fresh = _run(ring_coco, out, epochs=1, overwrite=True)
    assert _metrics(fresh.history) == _metrics(first.history)  # the same seed: the same run


@pytest.mark.slow  # two short training runs
def test_an_interrupted_run_resumes_to_the_same_weights(
    run, ring_coco, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}
    real = train_module.batch_loss

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 2, step 1 (5 training images, 4 per step)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "batch_loss", interrupted)
    out = tmp_path / "resumed.pth"
    with pytest.raises(KeyboardInterrupt):
        _run(ring_coco, out)
    assert load_state(work_dir(out) / "state.pt").epoch == 1 and not out.exists()
    monkeypatch.setattr(train_module, "batch_loss", real)
    resumed = _run(ring_coco, out, resume=True)
    assert _metrics(resumed.history) == _metrics(run.history)
    mine, theirs = _weights(resumed.checkpoint), _weights(run.checkpoint)
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)


@pytest.mark.slow  # a short training run
def test_a_non_finite_loss_stops_and_keeps_the_last_good_state(
    ring_coco, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    calls = {"n": 0}
    real = train_module.batch_loss

    def poisoned(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        loss, stats = real(*args, **kwargs)
        return (loss * float("nan") if calls["n"] == 3 else loss), stats

    monkeypatch.setattr(train_module, "batch_loss", poisoned)
    out = tmp_path / "nan.pth"
    with pytest.raises(
        NonFiniteLossError,
        match=r"the loss is nan at epoch 2, step 1 of 2: training "
        r"stopped, and the last good state \(epoch 1\) is kept in .*state.pt\. Lower "
        r"the learning rate \(lr=0.001\) and run again with resume=True",
    ):
        _run(ring_coco, out)
    state = load_state(work_dir(out) / "state.pt")
    assert state.epoch == 1 and all(torch.isfinite(v).all() for v in state.trained.values())
    assert not out.exists()


def test_a_checkpoint_of_another_model_type_is_refused_first(
    ring_coco: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        ValueError, match=r"holds a 'shapes' model, but model_type 'vit_b' was requested"
    ):
        finetune(ring_coco, model_type="vit_b", out=tmp_path / "x.pth",
                 checkpoint=samkit.download_checkpoint("shapes"), progress=False)  # fmt: skip
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"out": "model.txt"}, ValueError,
         r"out must be the path of a .pth or .pt file, but got 'model.txt'"),
        ({"out": ""}, ValueError, r"out must be the path of a .pth or .pt file, but got ''"),
        ({"epochs": 0}, ValueError, r"epochs must be an int >= 1, but got 0"),
        ({"prompts": "mask"}, ValueError, r"prompts must be a non-empty choice of box, point"),
        ({"resume": "yes"}, ValueError, r"resume must be True or False, but got 'yes'"),
        ({"model_type": "vit_x"}, ValueError, r"model_type must be one of .*, but got 'vit_x'"),
        ({"annotations": "missing.json"}, FileNotFoundError, r"annotation file not found"),
        ({"language": "fr"}, ValueError, r"language must be one of es, en, but got 'fr'"),
        ({"progress": "no"}, ValueError, r"progress must be True or False, but got 'no'"),
        ({"fast": "yes"}, ValueError, r"fast must be True, False or 'auto', but got 'yes'"),
    ],
)  # fmt: skip
def test_bad_arguments_before_any_work(ring_coco: Path, tmp_path: Path, kwargs: dict[str, Any],
                                       error: type[Exception], message: str) -> None:  # fmt: skip
    options = {
        "annotations": ring_coco,
        "model_type": "shapes",
        "out": tmp_path / "m.pth",
        "progress": False,
        **kwargs,
    }
    if kwargs.get("annotations"):
        options["annotations"] = tmp_path / str(kwargs["annotations"])
    with pytest.raises(error, match=message):
        finetune(**options)
    assert not (tmp_path / "m.finetune").exists()


@pytest.mark.slow  # converts the bundled model's image encoder with OpenVINO
def test_the_fine_tuned_checkpoint_loads_fast_with_its_bases_conversion(
    ring_coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path / "home"))  # the base's cache is there
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "f32")
    out = tmp_path / "tuned" / "mine.pth"
    result = _run(ring_coco, out, epochs=1, fast=True)
    base = sorted(p.name for p in (tmp_path / "home" / "fast-cache").glob("encoder-*-v*"))
    assert base and sorted(p.name for p in (out.parent / "fast-cache").iterdir()) == base
    conversions: list[int] = []
    original = fast_encoder.convert_openvino
    monkeypatch.setattr(
        fast_encoder, "convert_openvino", lambda *a: conversions.append(1) or original(*a)
    )
    tuned = samkit.load_sam("shapes", checkpoint=result.checkpoint, device="cpu", fast=True)
    assert tuned.image_encoder.fast_info.cache_hit and conversions == []
    assert str(out.parent / "fast-cache") in tuned.image_encoder.fast_info.detail
    # its decoder is the fine-tuned one: the weights loaded are the file's
    weights = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    decoder = tuned.mask_decoder.state_dict()
    assert all(torch.equal(v, weights[f"mask_decoder.{k}"]) for k, v in decoder.items())
    # embeddings made with PyTorch's encoder: nothing converted, nothing to share
    plain = tmp_path / "plain" / "mine.pth"
    _run(ring_coco, plain, epochs=1, cache_dir=tmp_path / "cache")
    assert not (plain.parent / "fast-cache").exists()


@pytest.mark.slow  # converts the bundled model's image encoder with OpenVINO
def test_fast_embeddings_come_from_openvino_and_are_cached_apart(
    ring_coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path / "home"))  # its own converted encoder
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "f32")  # the same on every CPU
    cache = tmp_path / "cache"
    plain = _run(ring_coco, tmp_path / "plain.pth", epochs=1, cache_dir=cache)
    fast = _run(ring_coco, tmp_path / "fast.pth", epochs=1, cache_dir=cache, fast=True)
    assert plain.embeddings_computed == fast.embeddings_computed == 6  # none shared
    names = sorted(path.name for path in cache.iterdir())
    assert len(names) == 12 and sum(name.endswith("-openvino-f32.pt") for name in names) == 6
    for name in (n for n in names if n.endswith("-openvino-f32.pt")):
        made_fast = torch.load(cache / name, weights_only=True)
        made_plain = torch.load(cache / name.replace("-openvino-f32", "-f32"), weights_only=True)
        assert made_fast.shape == made_plain.shape == (128, 24, 24)
        assert torch.allclose(made_fast, made_plain, atol=1e-2)
    assert abs(fast.before["box_miou"] - plain.before["box_miou"]) < 0.01
    record = json.loads(fast.record.read_text())
    assert record["settings"]["fast"] is True and record["after"] == fast.after
    again = _run(ring_coco, tmp_path / "again.pth", epochs=1, cache_dir=cache, fast=True)
    assert again.embeddings_computed == 0  # the converted encoder's embeddings, cached
    # "auto" chooses as load_sam(fast="auto") does: here OpenVINO, unless SAMKIT_FAST=0
    for setting, chosen in (("0", False), (None, True)):
        if setting is None:
            monkeypatch.delenv("SAMKIT_FAST", raising=False)
        else:
            monkeypatch.setenv("SAMKIT_FAST", setting)
        auto = _run(ring_coco, tmp_path / f"auto{setting}.pth", epochs=1, cache_dir=cache,
                    fast="auto")  # fmt: skip
        assert auto.embeddings_computed == 0  # each found its own variant's embeddings
        assert json.loads(auto.record.read_text())["settings"]["fast"] is chosen
