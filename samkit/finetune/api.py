"""``finetune``: a COCO file and its images in, a fine-tuned SAM state dict out.

Everything the user gave is checked before any training (the data set, the settings,
the checkpoint's model type, the output path); then the validation images' embeddings
are computed (or read from the cache) and the base model is measured, the run's state
is written (epoch 0), and each epoch trains, validates and writes the state again. At
the end the best epoch's weights go into a plain SAM state dict, written atomically,
with a JSON record beside it.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import torch
from segment_anything.modeling import Sam
from tqdm.auto import tqdm

from samkit.fast.cache import cache_dir_for, encoder_sha256, share_entries
from samkit.files import atomic_write, atomic_writer, sha256_file
from samkit.finetune.data import Dataset, load_dataset, split_images
from samkit.finetune.embeddings import EmbeddingCache, cached_embeddings
from samkit.finetune.result import FinetuneResult
from samkit.finetune.steps import Item, prepare_item
from samkit.finetune.texts import check_language, progress_text
from samkit.finetune.train import (
    DEFAULT_EPOCHS,
    RunState,
    Settings,
    check_settings,
    default_lr,
    load_state,
    save_state,
    start_state,
    train,
    trainable,
)
from samkit.images import load_image
from samkit.model import download_checkpoint, fast_wanted, load_sam
from samkit.registry import default_model_type, model_spec

#: The value of ``"format"`` in the JSON record beside a fine-tuned checkpoint.
RECORD_FORMAT = "samkit-finetune-1"


def work_dir(out: Path) -> Path:
    """The folder beside ``out`` that holds a run's state and embedding cache."""
    return out.with_name(out.stem + ".finetune")


def record_path(out: Path) -> Path:
    """The JSON record of the checkpoint ``out`` (``model.pth`` → ``model.json``)."""
    return out.with_suffix(".json")


def check_out(out: object) -> Path:
    """``out`` as a ``Path`` to a ``.pth``/``.pt`` file, or a ValueError saying why not."""
    if not isinstance(out, str | os.PathLike) or not str(out).strip():
        raise ValueError(f"out must be the path of a .pth or .pt file, but got {out!r}")
    path = Path(out).expanduser()
    if path.suffix not in (".pth", ".pt"):
        raise ValueError(f"out must be the path of a .pth or .pt file, but got {path.name!r}")
    if path.is_dir():
        raise ValueError(f"out must be a file path, but {path} is a folder")
    return path


def _check_flags(language: object, **flags: object) -> None:
    """The on/off flags (``fast`` may also be ``"auto"``), then the language."""
    for name, flag in flags.items():
        if name == "fast" and flag != "auto" and not isinstance(flag, bool):
            raise ValueError(f"fast must be True, False or 'auto', but got {flag!r}")
        if name != "fast" and not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False, but got {flag!r}")
    check_language(language)


def _changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    return [
        f"{key}: {before.get(key)!r} then, {now.get(key)!r} now"
        for key in sorted(set(before) | set(now))
        if before.get(key) != now.get(key)
    ]


def _open_state(
    state_path: Path, fingerprint: dict[str, Any], resume: bool, overwrite: bool
) -> RunState | None:
    """The state to go on from (``resume``), or None for a fresh start."""
    if not state_path.exists():
        return None
    if overwrite:
        state_path.unlink()
        return None
    if not resume:
        raise ValueError(
            f"an earlier run left its state in {state_path}: pass resume=True (samkit finetune "
            "--resume) to go on from its last finished epoch, or overwrite=True to start afresh"
        )
    state = load_state(state_path)
    changed = _changes(state.fingerprint, fingerprint)
    if changed:
        raise ValueError(
            f"cannot resume from {state_path}: it was made with other data or settings "
            f"({'; '.join(changed)}); only epochs and lr may change on resume"
        )
    return state


def _items(
    sam: Sam, encoder: torch.nn.Module, dataset: Dataset, indexes: list[int], cache: EmbeddingCache
) -> Any:
    """A function giving the prepared item of training image ``i`` (made once, on first use)."""
    made: dict[int, Item] = {}

    def item(i: int) -> Item:
        if i not in made:
            image = dataset.images[indexes[i]]
            [embedding] = cached_embeddings(
                sam, encoder, [image.sha256], lambda _: load_image(image.path), cache
            )
            made[i] = prepare_item(sam, image, embedding, keep_masks=False)
        return made[i]

    return item


def _validation_items(
    sam: Sam,
    encoder: torch.nn.Module,
    dataset: Dataset,
    indexes: list[int],
    cache: EmbeddingCache,
    progress: bool,
    language: str,
) -> list[Item]:
    images = [dataset.images[i] for i in indexes]
    desc = progress_text(language, "embeddings")
    with tqdm(total=len(images), desc=desc, disable=not progress) as bar:
        embeddings = cached_embeddings(
            sam,
            encoder,
            [image.sha256 for image in images],
            lambda i: load_image(images[i].path),
            cache,
            bar.update,
        )
    return [
        prepare_item(sam, im, e, keep_masks=True) for im, e in zip(images, embeddings, strict=True)
    ]


def _encoder(
    sam: Sam, model_type: str, checkpoint: Path, fast: bool | str
) -> tuple[torch.nn.Module, str, bool]:
    """The image encoder that makes the embeddings, its variant (the cache key's), ``fast``.

    The variant is ``"f32"`` for PyTorch's encoder (also where ``fast=True`` fell back
    to it), else the fast backend and its precision (``"openvino-f32"``, ...): the
    embeddings of another backend are close, not equal, so they are cached apart.
    ``fast="auto"`` is decided here, as ``load_sam`` decides it (``fast_wanted``).
    """
    if fast == "auto":
        fast = fast_wanted(sam.device)
    if not fast:
        return sam.image_encoder, "f32", False
    encoder = load_sam(
        model_type, checkpoint=checkpoint, device=sam.device, fast=True
    ).image_encoder
    info = getattr(encoder, "fast_info", None)
    backend = str(getattr(info, "backend", "torch"))
    precision = str(getattr(info, "precision", "f32"))
    return encoder, precision if backend == "torch" else f"{backend}-{precision}", True


def _write_outputs(
    sam: Sam, state: RunState, settings: Settings, out: Path, record: dict[str, Any]
) -> tuple[Path, Path]:
    """The best epoch's weights as a plain state dict (atomically), and its JSON record."""
    trainable(sam, settings).load_state_dict(state.best)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in sam.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out) as file:
        torch.save(weights, file)
    record["output"] = {"file": out.name, "sha256": sha256_file(out)}
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    return out, atomic_write(record_path(out), text)


def finetune(
    annotations: str | os.PathLike[str],
    images: str | os.PathLike[str] | None = None,
    model_type: str | None = None,
    out: str | os.PathLike[str] = "finetuned.pth",
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    epochs: int = DEFAULT_EPOCHS,
    lr: float | None = None,
    val_fraction: float = 0.2,
    prompts: tuple[str, ...] | list[str] | str = ("box", "point"),
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    corrective: bool = False,
    train_prompt_encoder: bool = False,
    batch_size: int = 4,
    anchor: float = 0.0,
    fast: bool | Literal["auto"] = False,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    language: str = "es",
) -> FinetuneResult:
    """Fine-tune SAM's mask decoder on a COCO data set; save the best epoch.

    The image encoder is frozen: each image's embedding is computed once and cached on
    disk (keyed by the image's and the checkpoint's sha256), so epochs after the first
    cost only decoder time. Prompts are sampled from the ground truth as SAM's paper
    does (boxes with noise, points inside the mask, optionally corrective clicks); the
    loss is focal + dice on the masks and MSE on the predicted IoU. A seeded share of
    the images (by image) is held out, and its box and point mIoU are measured before
    training and after every epoch; the best epoch is kept.

    Args:
        annotations: A COCO instance file (RLE or polygon masks).
        images: The folder its ``file_name`` entries are relative to (default: the
            annotation file's folder).
        model_type: The base model type (default: ``samkit.default_model_type()``).
        out: The fine-tuned checkpoint to write (``.pth`` or ``.pt``); its JSON record
            goes beside it (``.json``), the run's state and cache into ``<stem>.finetune/``.
        checkpoint: The base weights (default: as ``samkit.load_sam`` finds them,
            ``SAMKIT_CHECKPOINT`` included).
        epochs: Passes over the training images.
        lr: AdamW's learning rate, decayed along a cosine to a tenth by the last epoch
            (default: 1e-4, or 1e-3 for the bundled ``shapes`` model).
        val_fraction: The share of images held out for validation, in (0, 1).
        prompts: The prompt kinds to train on: ``"box"``, ``"point"`` or both (a tuple,
            or a comma-separated string).
        seed: The seed of the split and of the sampled prompts.
        resume: Go on from the last finished epoch of an earlier run with the same data
            and settings (``epochs`` and ``lr`` may change).
        overwrite: Discard an earlier run's state and start afresh.
        corrective: Also train a round of corrective clicks.
        train_prompt_encoder: Train the prompt encoder as well as the mask decoder.
        batch_size: Images per optimizer step.
        anchor: Pull the trained weights back toward the base model's after every step
            (``lr * anchor`` of the difference; 0: never): it forgets less of what the
            base model did well.
        fast: Compute the embeddings with ``load_sam(fast=True)``'s encoder;
            ``"auto"``: where ``load_sam(fast="auto")`` would (``samkit.model.fast_wanted``).
        device: Where to train (default: ``samkit.env.default_device()``).
        cache_dir: The embedding cache (default: ``embeddings/`` in the run's folder).
        progress: Show progress bars and a line per epoch.
        language: Their language: ``"es"`` (the notebooks') or ``"en"``.

    Returns:
        The :class:`FinetuneResult`: paths, the history, before and after metrics.

    Raises:
        FileNotFoundError: If the annotation file, an image or the checkpoint is missing.
        ValueError: If the data set, a setting, the checkpoint's model type or ``out`` is
            not valid, or an earlier run's state is in the way (see ``resume``).
        samkit.finetune.NonFiniteLossError: If the loss stops being finite; the state of
            the last finished epoch stays on disk.
    """
    started = time.perf_counter()
    target = check_out(out)
    kind = default_model_type() if model_type is None else model_spec(model_type).name
    chosen = tuple(prompts.split(",")) if isinstance(prompts, str) else tuple(prompts)
    rate = default_lr(kind) if lr is None else lr
    settings = check_settings(
        Settings(epochs, rate, val_fraction, chosen, seed, batch_size, 8, corrective,
                 train_prompt_encoder, anchor=anchor)
    )  # fmt: skip
    _check_flags(language, resume=resume, overwrite=overwrite, fast=fast, progress=progress)
    base, sam = _base_model(kind, checkpoint, device)
    dataset = load_dataset(annotations, images)
    train_idx, val_idx = split_images(len(dataset.images), settings.val_fraction, settings.seed)
    base_sha = sha256_file(base)
    fingerprint = _fingerprint(settings, kind, base_sha, dataset)
    state_path = work_dir(target) / "state.pt"
    state = _open_state(state_path, fingerprint, resume, overwrite)
    torch.manual_seed(settings.seed)
    encoder, variant, fast = _encoder(sam, kind, base, fast)
    cache = EmbeddingCache(cache_dir or work_dir(target) / "embeddings", base_sha, variant)
    val_items = _validation_items(sam, encoder, dataset, val_idx, cache, progress, language)
    if state is None:
        state = start_state(sam, val_items, settings, fingerprint)
        save_state(state_path, state)
    items = _items(sam, encoder, dataset, train_idx, cache)
    state = train(
        sam, items, len(train_idx), val_items, settings, state, state_path, progress, language
    )
    names = (_file_names(dataset, train_idx), _file_names(dataset, val_idx))
    record = _record(kind, base, base_sha, dataset, names, settings, fast, state)
    out_path, json_path = _write_outputs(sam, state, settings, target, record)
    _share_converted_encoder(sam, base, out_path, fast)
    return FinetuneResult(
        out_path, json_path, kind, state.history, state.best_epoch, names[0], names[1],
        cache.misses, time.perf_counter() - started,
    )  # fmt: skip


def _share_converted_encoder(sam: Sam, base: Path, out: Path, fast: bool) -> None:
    """Give ``out`` its base's converted encoders: the image encoder was not trained.

    ``load_sam(checkpoint=out, fast=True)`` then finds them beside ``out`` (the cache is
    keyed by the encoder's weights) and converts nothing.
    """
    if fast and sam.device.type == "cpu":
        weights = encoder_sha256(sam.image_encoder)
        share_entries(cache_dir_for(base), cache_dir_for(out), weights)


def _base_model(
    kind: str, checkpoint: str | os.PathLike[str] | None, device: str | torch.device | None
) -> tuple[Path, Sam]:
    """The base checkpoint's path (as ``load_sam`` finds it by default) and its model."""
    base = Path(checkpoint).expanduser() if checkpoint is not None else download_checkpoint(kind)
    return base, load_sam(kind, checkpoint=base, device=device)


def _fingerprint(settings: Settings, kind: str, base_sha: str, dataset: Dataset) -> dict[str, Any]:
    """What a resumed run must share with the run it goes on from."""
    fingerprint = {**settings.fingerprint(), "model_type": kind}
    return fingerprint | {"base_sha256": base_sha, "data_digest": dataset.digest}


def _file_names(dataset: Dataset, indices: Sequence[int]) -> list[str]:
    """The file names of the images at ``indices``."""
    return [dataset.images[i].file_name for i in indices]


def _record(
    kind: str,
    base: Path,
    base_sha: str,
    dataset: Dataset,
    names: tuple[list[str], list[str]],
    settings: Settings,
    fast: bool,
    state: RunState,
) -> dict[str, Any]:
    """The JSON record of a run: base model, data, settings, metrics, versions."""
    return {
        "format": RECORD_FORMAT,
        "model_type": kind,
        "base_checkpoint": {"file": base.name, "sha256": base_sha},
        "data": {
            "annotations": dataset.annotations.name,
            "digest": dataset.digest,
            "images": len(dataset.images),
            "objects": dataset.objects,
            "train_images": names[0],
            "val_images": names[1],
        },
        "settings": {**asdict(settings), "prompts": list(settings.prompts), "fast": fast},
        "before": state.history[0],
        "after": state.history[state.best_epoch],
        "best_epoch": state.best_epoch,
        "history": state.history,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
