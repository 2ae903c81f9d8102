"""The fine-tuning loop: epochs, validation and a resumable state after each, the best kept.

Only the mask decoder (and, when asked, the prompt encoder) learns; the image encoder
is frozen, its embeddings cached. Each epoch's prompts come from a random generator
seeded with ``(seed, epoch)``, and the state written after an epoch holds everything
the next one needs (the trained weights, AdamW's moments, the history, the best epoch),
so a run killed at any point and resumed gives the same weights as one that never
stopped. A non-finite loss stops the run before the weights are touched, naming the
epoch and step; the state on disk stays the last good one.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from segment_anything.modeling import Sam
from tqdm.auto import tqdm

from samkit.files import atomic_write
from samkit.finetune.steps import PROMPT_KINDS, Item, batch_loss, validate
from samkit.finetune.texts import progress_text

#: The value of ``"format"`` in a run's state file.
STATE_FORMAT = "samkit-finetune-state-1"

#: Default number of epochs.
DEFAULT_EPOCHS = 10

#: Default learning rate (AdamW) for Meta's checkpoints, as SAM fine-tuning recipes use.
DEFAULT_LR = 1e-4

#: Model types that learn at another default rate: the bundled model was trained from
#: scratch at a peak of 1e-3, and a tenth of that hardly moves it in a few epochs.
DEFAULT_LRS: dict[str, float] = {"shapes": 1e-3}


def default_lr(model_type: str) -> float:
    """The default learning rate for fine-tuning a model type."""
    return DEFAULT_LRS.get(model_type, DEFAULT_LR)


@dataclass(frozen=True)
class Settings:
    """How a run trains.

    ``epochs`` and ``lr`` may change when a run is resumed; the other fields are the
    run's fingerprint and may not.

    Attributes:
        epochs: Passes over the training images.
        lr: AdamW's learning rate.
        val_fraction: The share of images held out for validation.
        prompts: The prompt kinds to train on, from ``PROMPT_KINDS``.
        seed: The seed of the split and of every sampled prompt.
        batch_size: Images per optimizer step.
        max_objects: At most this many objects of an image per step.
        corrective: Also train a round of corrective clicks after each prompt.
        train_prompt_encoder: Train the prompt encoder too (the mask decoder always learns).
        weight_decay: AdamW's weight decay.
        anchor: After each step, pull every trained weight back toward the base model's
            by ``lr * anchor`` of the difference (0: not at all): less forgetting of what
            the base model did well, at the price of learning less.
    """

    epochs: int = DEFAULT_EPOCHS
    lr: float = DEFAULT_LR
    val_fraction: float = 0.2
    prompts: tuple[str, ...] = PROMPT_KINDS
    seed: int = 0
    batch_size: int = 4
    max_objects: int = 8
    corrective: bool = False
    train_prompt_encoder: bool = False
    weight_decay: float = 0.01
    anchor: float = 0.0

    def fingerprint(self) -> dict[str, Any]:
        """The settings that a resumed run must share with the run it goes on from."""
        out = asdict(self)
        out.pop("epochs")
        out.pop("lr")
        out["prompts"] = list(self.prompts)
        return out


def _int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, but got {value!r}")
    return int(value)


def _number(name: str, value: object, low: float, high: float = math.inf) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or not low <= float(value) < high:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a finite number in [{low}, {high}), but got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_settings(settings: Settings) -> Settings:
    """Return ``settings`` with every field checked (prompts as a sorted tuple).

    Raises:
        ValueError: If a field is out of its range; the message names it.
    """
    prompts: Any = settings.prompts
    if isinstance(prompts, str):
        prompts = tuple(prompts.split(","))
    if isinstance(prompts, tuple | list):
        prompts = tuple(p.strip() if isinstance(p, str) else p for p in prompts if p != "")
    if not isinstance(prompts, tuple | list) or not prompts or set(prompts) - set(PROMPT_KINDS):
        raise ValueError(
            f"prompts must be a non-empty choice of {', '.join(PROMPT_KINDS)}, but got {prompts!r}"
        )
    if not 0 < _number("val_fraction", settings.val_fraction, 0.0, 1.0):
        raise ValueError(f"val_fraction must be in (0, 1), but got {settings.val_fraction!r}")
    if not _number("lr", settings.lr, 0.0, 1.0) > 0:
        raise ValueError(f"lr must be a finite number in (0, 1), but got {settings.lr!r}")
    for name in ("corrective", "train_prompt_encoder"):
        if not isinstance(getattr(settings, name), bool):
            raise ValueError(f"{name} must be True or False, but got {getattr(settings, name)!r}")
    return Settings(
        epochs=_int("epochs", settings.epochs, 1),
        lr=float(settings.lr),
        val_fraction=float(settings.val_fraction),
        prompts=tuple(k for k in PROMPT_KINDS if k in prompts),
        seed=_int("seed", settings.seed, 0),
        batch_size=_int("batch_size", settings.batch_size, 1),
        max_objects=_int("max_objects", settings.max_objects, 1),
        corrective=settings.corrective,
        train_prompt_encoder=settings.train_prompt_encoder,
        weight_decay=_number("weight_decay", settings.weight_decay, 0.0),
        anchor=_number("anchor", settings.anchor, 0.0),
    )


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and the step."""


@dataclass
class RunState:
    """What the state file holds between epochs.

    Attributes:
        epoch: The last finished epoch (0: none, only the validation before training).
        history: One record per finished epoch (0 first): validation mIoU, loss, times.
        best_epoch: The epoch whose weights are kept.
        trained: The trainable modules' state dict now.
        best: The trainable modules' state dict of ``best_epoch``.
        optimizer: AdamW's state dict (empty before the first epoch).
        fingerprint: ``Settings.fingerprint()`` plus the data and checkpoint digests.
    """

    epoch: int
    history: list[dict[str, Any]]
    best_epoch: int
    trained: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor]
    optimizer: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)


def save_state(path: Path, state: RunState) -> Path:
    """Write the state file atomically (``torch.save`` of plain tensors and JSON text)."""
    payload = {
        "format": STATE_FORMAT,
        "epoch": state.epoch,
        "best_epoch": state.best_epoch,
        "history": json.dumps(state.history),
        "fingerprint": json.dumps(state.fingerprint, sort_keys=True),
        "trained": state.trained,
        "best": state.best,
        "optimizer": state.optimizer,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, buffer.getvalue())


def load_state(path: Path) -> RunState:
    """Read a state file written by :func:`save_state` (``weights_only=True``).

    Raises:
        ValueError: If the file is not a fine-tuning state, or is damaged.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a cut or foreign file: torch raises several kinds
        raise ValueError(f"{path} is not a readable fine-tuning state: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise ValueError(f"{path} must be a state written by samkit.finetune ({STATE_FORMAT})")
    return RunState(
        epoch=int(payload["epoch"]),
        history=json.loads(payload["history"]),
        best_epoch=int(payload["best_epoch"]),
        trained=payload["trained"],
        best=payload["best"],
        optimizer=payload["optimizer"],
        fingerprint=json.loads(payload["fingerprint"]),
    )


def trainable(sam: Sam, settings: Settings) -> torch.nn.ModuleDict:
    """The modules that learn: the mask decoder, and the prompt encoder when asked."""
    modules = {"mask_decoder": sam.mask_decoder}
    if settings.train_prompt_encoder:
        modules["prompt_encoder"] = sam.prompt_encoder
    return torch.nn.ModuleDict(modules)


def score(metrics: dict[str, Any], prompts: tuple[str, ...]) -> float:
    """What picks the best epoch: the mean validation mIoU of the trained prompt kinds."""
    return float(np.mean([metrics[f"{kind}_miou"] for kind in prompts]))


@contextlib.contextmanager
def training_mode() -> Iterator[None]:
    """Deterministic algorithms and denormals flushed to zero, put back afterwards."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    flush = torch.tensor([1e-39], dtype=torch.float32).mul(1.0).item() == 0.0
    torch.use_deterministic_algorithms(True)
    # not also filling each new tensor with NaN: a tenth of a step's time on a CPU
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.utils.deterministic.fill_uninitialized_memory = fill  # type: ignore[attr-defined]
        torch.set_flush_denormal(flush)


def _state_dict(modules: torch.nn.ModuleDict) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in modules.state_dict().items()}


def start_state(
    sam: Sam, val_items: list[Item], settings: Settings, fingerprint: dict[str, Any]
) -> RunState:
    """The state before any training: the base model's validation as epoch 0."""
    start = time.perf_counter()
    metrics = validate(sam, val_items)
    record = {"epoch": 0, **metrics, "loss": None, "seconds": time.perf_counter() - start}
    weights = _state_dict(trainable(sam, settings))
    return RunState(0, [record], 0, weights, copy.deepcopy(weights), {}, fingerprint)


def lr_at(settings: Settings, progress: float) -> float:
    """The learning rate after ``progress`` epochs: cosine decay from ``lr`` to a tenth."""
    t = min(1.0, progress / settings.epochs)
    return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def run_epoch(
    sam: Sam,
    items: Callable[[int], Item],
    count: int,
    optimizer: torch.optim.Optimizer,
    settings: Settings,
    epoch: int,
    state_path: Path,
    progress: bool,
    base: list[torch.Tensor] | None = None,
    language: str = "es",
) -> float:
    """One pass over the training images; returns the mean loss.

    Raises:
        NonFiniteLossError: If a step's loss (or gradient) is not finite; nothing of
            that step reaches the weights.
    """
    rng = np.random.default_rng([settings.seed, epoch, 3])
    order = rng.permutation(count)
    batches = [order[i : i + settings.batch_size] for i in range(0, count, settings.batch_size)]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    losses = []
    desc = progress_text(language, "epoch", epoch=epoch, epochs=settings.epochs)
    bar = tqdm(batches, desc=desc, disable=not progress)
    for step, batch in enumerate(bar, start=1):
        loss, _ = batch_loss(
            sam,
            [items(int(i)) for i in batch],
            rng,
            settings.prompts,
            settings.max_objects,
            settings.corrective,
        )
        optimizer.zero_grad(set_to_none=True)
        what = f"loss is {float(loss.detach())}"
        if torch.isfinite(loss):
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
            what = "" if torch.isfinite(norm) else "gradient is not finite"
        if what:
            raise NonFiniteLossError(
                f"the {what} at epoch {epoch}, step {step} of {len(batches)}: training "
                f"stopped, and the last good state (epoch {epoch - 1}) is kept in {state_path}. "
                f"Lower the learning rate (lr={settings.lr:g}) and run again with resume=True "
                "(samkit finetune --resume)."
            )
        for group in optimizer.param_groups:
            group["lr"] = lr_at(settings, epoch - 1 + (step - 1) / len(batches))
        optimizer.step()
        if base is not None and settings.anchor > 0:
            with torch.no_grad():
                rate = optimizer.param_groups[0]["lr"] * settings.anchor
                for p, p0 in zip(params, base, strict=True):
                    p.lerp_(p0, min(1.0, rate))
        losses.append(float(loss.detach()))
        bar.set_postfix({progress_text(language, "loss"): f"{losses[-1]:.3f}"})
    bar.close()
    return float(np.mean(losses))


def train(
    sam: Sam,
    items: Callable[[int], Item],
    count: int,
    val_items: list[Item],
    settings: Settings,
    state: RunState,
    state_path: Path,
    progress: bool = True,
    language: str = "es",
) -> RunState:
    """Train from ``state`` up to ``settings.epochs``, writing the state after each epoch.

    Args:
        sam: The model, its weights as ``state.trained`` says.
        items: The training image of an index (prepared when first asked for).
        count: How many training images there are.
        val_items: The validation images.
        settings: The run's settings.
        state: Where the run stands (epoch 0 for a new run).
        state_path: The state file.
        progress: Show tqdm progress bars and a line per epoch.
        language: The language they are shown in (``samkit.finetune.texts.LANGUAGES``).

    Returns:
        The state after the last epoch (also on disk).
    """
    modules = trainable(sam, settings)
    base = [p.detach().clone() for p in modules.parameters()]  # sam holds the base weights
    modules.load_state_dict(state.trained)
    params = [p for p in modules.parameters()]
    for p in sam.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(
        params, lr=settings.lr, weight_decay=settings.weight_decay, fused=sam.device.type == "cpu"
    )
    if state.optimizer:
        optimizer.load_state_dict(state.optimizer)
    with training_mode():
        for epoch in range(state.epoch + 1, settings.epochs + 1):
            start, cpu = time.perf_counter(), time.process_time()
            loss = run_epoch(
                sam, items, count, optimizer, settings, epoch, state_path, progress, base, language
            )
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
            metrics = validate(sam, val_items)
            record = {
                "epoch": epoch,
                **metrics,
                "loss": loss,
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "val_seconds": time.perf_counter() - start - seconds,
            }
            state.history.append(record)
            state.epoch = epoch
            state.trained = _state_dict(modules)
            state.optimizer = copy.deepcopy(optimizer.state_dict())
            best = state.history[state.best_epoch]
            if score(metrics, settings.prompts) > score(best, settings.prompts):
                state.best_epoch, state.best = epoch, copy.deepcopy(state.trained)
            save_state(state_path, state)
            if progress:
                box, point = metrics["box_miou"], metrics["point_miou"]
                line = progress_text(language, "line", epoch=epoch, box=box, point=point)
                print(line, file=sys.stderr)
    for p in params:
        p.requires_grad_(False)
    return state
