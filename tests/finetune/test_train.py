from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from samkit.finetune.train import (
    RunState,
    Settings,
    check_settings,
    load_state,
    lr_at,
    save_state,
)


def test_default_settings_are_valid() -> None:
    assert check_settings(Settings()) == Settings()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, r"epochs must be an int >= 1, but got 0"),
        ({"epochs": 2.5}, r"epochs must be an int >= 1, but got 2.5"),
        ({"lr": 0.0}, r"lr must be a finite number in \(0, 1\), but got 0.0"),
        ({"lr": math.nan}, r"lr must be a finite number in \[0.0, 1.0\), but got nan"),
        ({"lr": "1e-4"}, r"lr must be a finite number in \[0.0, 1.0\), but got '1e-4'"),
        ({"val_fraction": 1.5},
         r"val_fraction must be a finite number in \[0.0, 1.0\), but got 1.5"),
        ({"val_fraction": 0}, r"val_fraction must be in \(0, 1\), but got 0"),
        # empty
        ({"prompts": ()}, r"prompts must be a non-empty choice of box, point, but got \(\)"),
        ({"prompts": "box,mask"},
         r"prompts must be a non-empty choice of box, point, but got \('box', 'mask'\)"),
        ({"seed": -1}, r"seed must be an int >= 0, but got -1"),
        ({"batch_size": 0}, r"batch_size must be an int >= 1, but got 0"),
        ({"corrective": "yes"}, r"corrective must be True or False, but got 'yes'"),
    ],
)  # fmt: skip
def test_bad_settings(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_settings(Settings(**change))


def test_prompts_from_a_string_in_canonical_order() -> None:
    assert check_settings(Settings(prompts="point, box")).prompts == ("box", "point")  # type: ignore[arg-type]
    assert check_settings(Settings(prompts="point")).prompts == ("point",)  # type: ignore[arg-type]


def test_fingerprint_leaves_out_what_may_change_on_resume() -> None:
    a, b = Settings(epochs=3, lr=1e-3), Settings(epochs=9, lr=1e-5)
    assert a.fingerprint() == b.fingerprint()
    assert Settings(seed=1).fingerprint() != Settings(seed=2).fingerprint()


def test_lr_decays_from_lr_to_a_tenth() -> None:
    settings = Settings(epochs=4, lr=1e-3)
    assert lr_at(settings, 0) == pytest.approx(1e-3)
    assert lr_at(settings, 2) == pytest.approx(0.55e-3)
    assert lr_at(settings, 4) == pytest.approx(1e-4)


def test_state_round_trip_with_weights_only(tmp_path: Path) -> None:
    weights = {"w": torch.arange(4.0)}
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))])
    optimizer.param_groups[0]["params"][0].grad = torch.ones(2)
    optimizer.step()
    state = RunState(
        2, [{"epoch": 0, "box_miou": 0.5}], 1, weights, weights, optimizer.state_dict(), {"seed": 0}
    )
    path = save_state(tmp_path / "run" / "state.pt", state)
    back = load_state(path)
    assert (back.epoch, back.best_epoch, back.history, back.fingerprint) == (
        2,
        1,
        state.history,
        {"seed": 0},
    )
    assert torch.equal(back.trained["w"], weights["w"])
    assert torch.equal(
        back.optimizer["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )
    assert [p.name for p in path.parent.iterdir()] == ["state.pt"]  # nothing temporary left


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is not a readable fine-tuning state"),  # empty
        (b"not torch", r"is not a readable fine-tuning state"),
    ],
)
def test_a_foreign_state_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "state.pt").write_bytes(content)
    with pytest.raises(ValueError, match=message):
        load_state(tmp_path / "state.pt")


def test_a_state_of_something_else_is_refused(tmp_path: Path) -> None:
    torch.save({"model": torch.ones(1)}, tmp_path / "state.pt")
    with pytest.raises(ValueError, match=r"must be a state written by samkit.finetune"):
        load_state(tmp_path / "state.pt")
