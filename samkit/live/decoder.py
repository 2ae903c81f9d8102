"""One prompt through SAM's prompt encoder and mask decoder, for the live widget.

The embedding is already there (:mod:`samkit.live.embedding`); what is left per prompt
is small, so it runs on one CPU thread for a CPU model by default (split across threads
it waits more than it computes). When only points were added to the previous prompt,
SAM gets its previous low-resolution logits as ``mask_input`` and corrects its answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from samkit.live.overlay import mask_overlay_png


def check_predictor(predictor: Any) -> None:
    """Refuse anything that cannot ``predict`` and ``set_image`` like a ``SamPredictor``.

    Args:
        predictor: The object given as the widget's predictor.

    Raises:
        ValueError: If it has no ``predict`` method or no ``set_image``.
    """
    if not callable(getattr(predictor, "predict", None)) or not hasattr(predictor, "set_image"):
        raise ValueError(
            f"predictor must be a segment_anything.SamPredictor, but got {type(predictor).__name__}"
        )


def choose_decoder_threads(predictor: Any, decoder_threads: int | None) -> int | None:
    """The CPU threads for each prompt's decoder run.

    Args:
        predictor: The ``SamPredictor`` (its ``device`` says CPU or GPU).
        decoder_threads: A positive int, or ``None`` for the default.

    Returns:
        ``decoder_threads`` when given; else 1 for a model on the CPU and ``None`` (torch's
        own setting) for a GPU model.

    Raises:
        ValueError: If ``decoder_threads`` is not a positive int or ``None``.
    """
    if decoder_threads is not None and (
        isinstance(decoder_threads, bool)
        or not isinstance(decoder_threads, int)
        or decoder_threads < 1
    ):
        raise ValueError(
            f"decoder_threads must be a positive int or None, but got {decoder_threads!r}"
        )
    if decoder_threads is not None:
        return decoder_threads
    return 1 if str(getattr(predictor, "device", "cpu")).startswith("cpu") else None


@contextlib.contextmanager
def decoder_threads(threads: int | None) -> Iterator[None]:
    """Run the block on ``threads`` CPU threads and give torch's setting back after.

    Args:
        threads: The number of threads, or ``None`` to leave torch's setting as it is.

    Yields:
        Nothing; the setting holds inside the ``with`` block.
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclasses.dataclass(frozen=True)
class Answer:
    """SAM's answer to one prompt, and what the browser is sent of it.

    Attributes:
        masks: Bool masks of shape `(C, H, W)` (C is 3, 1, or 0 with no prompt).
        scores: SAM's predicted IoU of each mask, shape `(C,)`.
        logits: The low-resolution logits of each mask, shape `(C, h, w)`.
        overlays: One :func:`mask_overlay_png` data URL per mask.
    """

    masks: npt.NDArray[np.bool_]
    scores: npt.NDArray[np.float32]
    logits: npt.NDArray[np.float32]
    overlays: list[str]

    @classmethod
    def empty(cls, height: int, width: int) -> Answer:
        """No prompt, no mask: `(0, H, W)` masks and nothing to show."""
        return cls(
            masks=np.zeros((0, height, width), dtype=bool),
            scores=np.zeros((0,), dtype=np.float32),
            logits=np.zeros((0, 1, 1), dtype=np.float32),
            overlays=[],
        )


def is_prefix(old: list[list[float]], new: list[list[float]]) -> bool:
    """Whether ``new`` is ``old`` with points added at the end (and at least one)."""
    return len(old) < len(new) and new[: len(old)] == old


@dataclasses.dataclass(frozen=True)
class ShownPrompt:
    """The prompt whose mask is shown, and that mask's logits, to refine it next time.

    Attributes:
        box: ``[x0, y0, x1, y1]`` or ``[]``.
        points: ``[[x, y], ...]`` in image pixels.
        labels: One 1 (include) or 0 (exclude) per point.
        logits: The shown mask's low-resolution logits, shape `(h, w)`.
    """

    box: list[float]
    points: list[list[float]]
    labels: list[int]
    logits: npt.NDArray[np.float32]

    def mask_input_for(
        self, box: list[float], points: list[list[float]], labels: list[int]
    ) -> npt.NDArray[np.float32] | None:
        """The logits as ``mask_input`` `(1, h, w)` if the new prompt only adds points.

        Args:
            box: The new prompt's box.
            points: The new prompt's points.
            labels: The new prompt's labels.

        Returns:
            The logits with a leading axis, or ``None`` when the box changed, a point was
            moved or removed, or nothing was added.
        """
        if (
            self.box == box
            and is_prefix(self.points, points)
            and self.labels == labels[: len(self.points)]
        ):
            return self.logits[None]
        return None


class Decoder:
    """Runs prompts for one predictor on a fixed number of CPU threads."""

    def __init__(self, predictor: Any, threads: int | None) -> None:
        """Decode with ``predictor`` on ``threads`` CPU threads (``None``: torch's setting)."""
        self.predictor = predictor
        self.threads = threads

    def warm_up(self, width: int, height: int) -> None:
        """One throwaway prompt, so that the first one drawn answers as fast as the rest."""
        center = np.array([[width / 2, height / 2]], dtype=np.float32)
        with decoder_threads(self.threads):
            self.predictor.predict(
                point_coords=center, point_labels=np.array([1]), multimask_output=True
            )

    def predict(
        self,
        box: list[float],
        points: list[list[float]],
        labels: list[int],
        mask_input: npt.NDArray[np.float32] | None,
        multimask: bool,
    ) -> Answer:
        """SAM's masks for one prompt (the image must be set), with their overlays.

        Args:
            box: ``[x0, y0, x1, y1]`` or ``[]``.
            points: ``[[x, y], ...]`` (may be empty).
            labels: One label per point.
            mask_input: Previous logits `(1, h, w)`, or ``None``.
            multimask: Three candidates (else one).

        Returns:
            The :class:`Answer`, overlays at the image's display size.
        """
        coords = np.asarray(points, dtype=np.float32).reshape(-1, 2) if points else None
        with decoder_threads(self.threads):
            masks, scores, logits = self.predictor.predict(
                point_coords=coords,
                point_labels=np.asarray(labels, dtype=np.int32) if points else None,
                box=np.asarray(box, dtype=np.float32) if box else None,
                mask_input=mask_input,
                multimask_output=multimask,
            )
        masks = np.asarray(masks, dtype=bool)
        height, width = masks.shape[-2:]
        return Answer(
            masks=masks,
            scores=np.asarray(scores, dtype=np.float32),
            logits=np.asarray(logits, dtype=np.float32),
            overlays=[mask_overlay_png(m, width, height) for m in masks],
        )
