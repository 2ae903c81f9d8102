"""Embeddings the automatic mask generator remembers: one photo, several runs, one encoder pass.

A learner runs the generator on one photo several times: with the defaults, with
``min_mask_region_area``, with tuned thresholds and crops (notebook 3). Each run used
to embed the same image (and the same crops) again, seconds to minutes on a CPU, for
the same result. :func:`set_image_once` remembers the last few embeddings of a model,
keyed by the image's bytes and the encoder's weights, and gives them back to the
predictor as ``set_image`` would have computed them.

The key changes whenever the result could: another image (or the same array changed
in place), another encoder object (``load_sam`` again, ``fast=True``), or weights
changed in place (``load_state_dict``, an optimizer step: torch counts every change of a
tensor in its ``_version``).
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict
from typing import Any

import numpy as np
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

__all__ = ["REMEMBERED", "forget", "remembered", "set_image_once"]

#: Embeddings kept per model (a ``vit_h`` embedding is 4 MiB).
REMEMBERED = 6

_MEMORY: weakref.WeakKeyDictionary[Sam, OrderedDict[tuple[Any, ...], tuple[Any, ...]]] = (
    weakref.WeakKeyDictionary()
)


def _key(predictor: SamPredictor, image: np.ndarray) -> tuple[Any, ...]:
    """What the embedding of ``image`` depends on."""
    encoder = predictor.model.image_encoder
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).hexdigest()
    versions = tuple(int(p._version) for p in encoder.parameters())
    return (digest, image.shape, str(image.dtype), id(encoder), versions)


def set_image_once(predictor: SamPredictor, image: np.ndarray) -> bool:
    """``predictor.set_image(image)``, or the embedding remembered from an earlier call.

    Args:
        predictor: The generator's predictor.
        image: The image (or crop), ``(H, W, 3)`` uint8 RGB, as ``set_image`` takes it.

    Returns:
        Whether the embedding was remembered (``False``: it was computed now).

    Example:
        >>> import numpy as np, torch
        >>> from segment_anything import SamPredictor
        >>> from samkit.model import build_shapes_sam
        >>> predictor = SamPredictor(build_shapes_sam())
        >>> image = np.zeros((48, 64, 3), np.uint8)
        >>> set_image_once(predictor, image), set_image_once(predictor, image)
        (False, True)
    """
    memory = _MEMORY.setdefault(predictor.model, OrderedDict())
    key = _key(predictor, image)
    if key in memory:
        memory.move_to_end(key)
        features, original_size, input_size = memory[key]
        predictor.reset_image()
        predictor.features = features
        predictor.original_size, predictor.input_size = original_size, input_size
        predictor.is_image_set = True
        return True
    predictor.set_image(image)
    if predictor.is_image_set:
        memory[key] = (predictor.features, predictor.original_size, predictor.input_size)
    while len(memory) > REMEMBERED:
        memory.popitem(last=False)
    return False


def forget(model: Sam) -> None:
    """Drop every embedding remembered for ``model``."""
    _MEMORY.pop(model, None)


def remembered(model: Sam) -> int:
    """How many embeddings are remembered for ``model``."""
    return len(_MEMORY.get(model, ()))
