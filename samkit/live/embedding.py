"""The image embedding behind a live widget, computed once per image and predictor.

``SamPredictor.set_image`` runs the image encoder, by far the slowest part of SAM; each
prompt after it only runs the prompt encoder and the mask decoder. A small memo remembers
which image each predictor holds (by its pixels' digest), so a second widget on the same
predictor and image reuses the embedding, and a widget whose predictor was given another
image since sets its own again before the next prompt.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from typing import Any

import numpy as np
import numpy.typing as npt

#: The image each predictor holds, as ``(features, digest)``: a second widget on the same
#: predictor and image reuses the embedding instead of computing it again.
_EMBEDDED: weakref.WeakKeyDictionary[Any, tuple[Any, str]] = weakref.WeakKeyDictionary()


def image_digest(pixels: npt.NDArray[np.uint8]) -> str:
    """A short digest of an image's pixels, to tell one image from another.

    Args:
        pixels: The image, any shape (here RGB uint8 `(H, W, 3)`).

    Returns:
        32 hex digits (BLAKE2b, 16 bytes).
    """
    return hashlib.blake2b(pixels.tobytes(), digest_size=16).hexdigest()


def held_embedding(predictor: Any) -> tuple[Any, str] | None:
    """The ``(features, digest)`` remembered for ``predictor``, if any.

    Args:
        predictor: A ``SamPredictor``.

    Returns:
        The features tensor and the digest of the image they embed, or ``None`` (also for
        a predictor that cannot be weakly referenced, which is never remembered).
    """
    try:
        return _EMBEDDED.get(predictor)
    except TypeError:
        return None


def remember_embedding(predictor: Any, features: Any, digest: str) -> None:
    """Remember that ``predictor`` holds ``features``, the embedding of image ``digest``.

    Args:
        predictor: A ``SamPredictor`` (one that cannot be weakly referenced is skipped).
        features: Its ``features`` tensor after ``set_image``.
        digest: :func:`image_digest` of the image.
    """
    try:
        _EMBEDDED[predictor] = (features, digest)
    except TypeError:
        pass


def check_embedded(predictor: Any, width: int, height: int) -> None:
    """Refuse ``embedded=True`` when the predictor cannot hold this image's embedding.

    Args:
        predictor: A ``SamPredictor`` said to hold the image already.
        width: The image's width in pixels.
        height: The image's height in pixels.

    Raises:
        ValueError: If no image is set, or one of another size.
    """
    size = tuple(getattr(predictor, "original_size", None) or ())
    if not getattr(predictor, "is_image_set", False) or size != (height, width):
        held_size = "no image" if not size else f"an image of {size[1]}x{size[0]}"
        raise ValueError(
            f"embedded=True, but the predictor holds {held_size}, not this "
            f"{width}x{height} image: call predictor.set_image(image) first, or "
            "leave embedded=False and the widget computes the embedding"
        )


class ImageEmbedding:
    """One image's embedding in one predictor: computed at most once while it is held.

    Attributes:
        predictor: The ``SamPredictor``.
        pixels: The RGB uint8 image `(H, W, 3)`.
        digest: :func:`image_digest` of ``pixels``.
        features: The predictor's ``features`` for this image (``None`` until set).
        ms: Milliseconds the last ``set_image`` took here (0.0 when it was reused).
    """

    def __init__(self, predictor: Any, pixels: npt.NDArray[np.uint8], *, embedded: bool) -> None:
        """Hold ``pixels``' embedding in ``predictor``, computing it only when needed.

        Args:
            predictor: A ``SamPredictor``.
            pixels: The RGB uint8 image `(H, W, 3)`.
            embedded: ``True`` says ``predictor.set_image(pixels)`` was already called.

        Raises:
            ValueError: If ``embedded`` is ``True`` but no image of this size is set.
        """
        self.predictor = predictor
        self.pixels = pixels
        self.digest = image_digest(pixels)
        self.features: Any = None
        self.ms = 0.0
        if embedded:
            height, width = pixels.shape[:2]
            check_embedded(predictor, width, height)
            self.features = predictor.features
            remember_embedding(predictor, self.features, self.digest)
            return
        held = held_embedding(predictor)
        current = getattr(predictor, "features", None)
        if held is not None and held[1] == self.digest and held[0] is current:
            self.features = held[0]  # this predictor already holds this image's embedding
        else:
            self.compute()

    def compute(self) -> None:
        """Compute the embedding (``set_image``) and remember it for the predictor."""
        started = time.perf_counter()
        self.predictor.set_image(self.pixels)
        self.ms = round((time.perf_counter() - started) * 1000, 1)
        self.features = getattr(self.predictor, "features", None)
        remember_embedding(self.predictor, self.features, self.digest)

    def ensure(self) -> None:
        """Set the image again if someone gave the predictor another image since."""
        if getattr(self.predictor, "features", None) is not self.features:
            self.compute()
