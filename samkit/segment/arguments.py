"""The arguments of a segment job, checked before anything is loaded or written.

The flags, the output folder, the model type with its generator settings, text prompts
(SAM 3) and what a transformers model can be asked for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from samkit.model import MODEL_TYPES, default_model_type
from samkit.segment.spec import ENGINES, SegmentUsageError
from samkit.settings import amg_settings


def check_flag(name: str, value: object) -> bool:
    """``value`` when it is a bool.

    Raises:
        SegmentUsageError: If it is anything else (``"yes"``, ``1``, ``None``).
    """
    if not isinstance(value, bool):
        raise SegmentUsageError(f"{name} must be True or False, but got {value!r}")
    return value


def check_arguments(
    out_dir: str | os.PathLike[str], engine: str, flags: Mapping[str, object]
) -> Path:
    """Check the engine, the on/off settings and the output folder; the folder, resolved.

    Raises:
        SegmentUsageError: If the engine is unknown, a flag is not a bool, or ``out_dir``
            is not a path or names a file.
    """
    if engine not in ENGINES:
        raise SegmentUsageError(f"engine must be one of {', '.join(ENGINES)}, but got {engine!r}")
    for name, value in flags.items():
        check_flag(name, value)
    if not isinstance(out_dir, str | os.PathLike) or not str(out_dir).strip():
        raise SegmentUsageError(f"out_dir must be a folder path, but got {out_dir!r}")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise SegmentUsageError(f"--out must be a folder, but {out_dir} is a file")
    check_writable(out, out_dir)
    return out


def check_text(
    text: Sequence[str] | None,
    threshold: object,
    model_type: str | None,
    boxes: object,
    amg: Mapping[str, Any],
) -> tuple[str, ...]:
    """The phrases of ``text=`` (``()`` for none), checked against the other arguments.

    Raises:
        SegmentUsageError: If a phrase is not valid, the model is not ``sam3``, boxes or
            generator settings were given too, or the threshold is not from 0 to 1.
    """
    if text is None:
        return ()
    from samkit.hf.sam3 import check_phrases

    try:
        phrases = tuple(check_phrases(text))
    except ValueError as error:
        raise SegmentUsageError(f"--text: {error}") from None
    if model_type not in (None, "sam3"):
        raise SegmentUsageError(f"text prompts need model 'sam3', but got {model_type!r}")
    if boxes is not None or amg:
        given = "boxes" if boxes is not None else ", ".join(sorted(amg))
        raise SegmentUsageError(f"text prompts take no {given}: give --text alone")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise SegmentUsageError(f"text_threshold must be from 0 to 1, but got {threshold!r}")
    if not 0 <= threshold <= 1:
        raise SegmentUsageError(f"text_threshold must be from 0 to 1, but got {threshold!r}")
    return phrases


def check_hub_model(
    chosen: str, checkpoint: object, boxes: object, fast: bool, texts: tuple[str, ...]
) -> bool:
    """Whether ``chosen`` is a transformers model (SAM 2.1, SAM 3), checked for the job.

    Raises:
        SegmentUsageError: If it is asked for what it does not do (automatic masks,
            ``--fast``; SAM 3 anything but text), or its checkpoint is not a folder.
    """
    if MODEL_TYPES[chosen].hub is None:
        return False
    if not texts and (boxes is None or fast or chosen == "sam3"):
        raise SegmentUsageError(
            f"{chosen} (Hugging Face transformers) answers "
            + ("--text" if chosen == "sam3" else "--boxes, without --fast")
            + ": automatic masks and --fast need a segment-anything model (vit_h, vit_l, "
            "vit_b, shapes)"
        )
    if checkpoint is not None and not Path(str(checkpoint)).is_dir():
        raise SegmentUsageError(f"checkpoint folder (save_pretrained) not found: {checkpoint}")
    return True


def check_writable(out: Path, out_dir: str | os.PathLike[str]) -> None:
    """Check, writing nothing, that ``out`` exists as a writable folder or can be made.

    Raises:
        SegmentUsageError: If ``out`` (or the folder it would be made in) is not a
            writable folder.
    """
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SegmentUsageError(
            f"--out {out_dir} cannot be created: {existing} is a file, not a folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "is not writable" if existing == out else f"cannot be created in {existing}"
        raise SegmentUsageError(
            f"--out {out_dir} {what} (permission denied): choose a folder you can write to"
        )


def choose_model(
    model_type: str | None,
    checkpoint: str | os.PathLike[str] | None,
    boxes: str | os.PathLike[str] | None,
    amg_overrides: Mapping[str, Any],
    fast: bool = False,
    texts: tuple[str, ...] = (),
) -> tuple[str, dict[str, Any]]:
    """The model type and the generator's settings, checked.

    Returns:
        The model type (samkit's default when ``None``; ``"sam3"`` for text prompts)
        and its generator settings with the overrides applied.

    Raises:
        SegmentUsageError: If the model type or a setting is not valid, settings were
            given with boxes, or the checkpoint file does not exist.
    """
    try:
        chosen = "sam3" if texts else default_model_type() if model_type is None else model_type
        amg = {} if texts else amg_settings(chosen, **amg_overrides)
    except ValueError as error:
        raise SegmentUsageError(str(error)) from None
    if check_hub_model(chosen, checkpoint, boxes, fast, texts):
        return chosen, amg
    if boxes is not None and amg_overrides:
        raise SegmentUsageError(
            f"{', '.join(sorted(amg_overrides))}: generator settings apply to automatic masks, "
            "but boxes were given to prompt with"
        )
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise SegmentUsageError(f"checkpoint file not found: {checkpoint}")
    return chosen, amg
