"""Image embeddings computed once and kept on disk, keyed by image and checkpoint.

Fine-tuning freezes the image encoder, so every image's embedding is the same in every
epoch: it is computed once, in the first epoch, and saved to a cache folder under a
name made of the image file's sha256, the checkpoint's sha256 and the encoder's
precision. Later epochs, a resumed run, or another run on the same images and
checkpoint read it back (``torch.load(..., weights_only=True)``). Entries are written to
a temporary name and renamed, so a killed run never leaves half an entry; an entry
that cannot be read is computed again.

Example:
    ```python
    cache = EmbeddingCache("runs/cache", checkpoint_sha256)
    embedding = cache.get(image_sha256)  # None when not cached yet
    ```
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from samkit.files import atomic_write


class EmbeddingCache:
    """A folder of image embeddings for one checkpoint and encoder precision.

    Args:
        folder: The cache folder (created when missing).
        checkpoint_sha256: The sha256 of the checkpoint whose encoder made them.
        variant: The encoder's precision or backend (``"f32"``, ``"bf16"``, ...).
    """

    def __init__(
        self, folder: str | os.PathLike[str], checkpoint_sha256: str, variant: str = "f32"
    ) -> None:
        self.folder = Path(folder)
        self.checkpoint = checkpoint_sha256
        self.variant = variant
        self.hits = 0
        self.misses = 0

    def path(self, image_sha256: str) -> Path:
        """The file of one image's embedding."""
        return self.folder / f"{image_sha256}-{self.checkpoint[:16]}-{self.variant}.pt"

    def get(self, image_sha256: str) -> torch.Tensor | None:
        """The cached embedding `(C, h, w)` of an image, or None (missing or unreadable)."""
        path = self.path(image_sha256)
        if not path.is_file():
            return None
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError):
            return None
        return value if isinstance(value, torch.Tensor) and value.ndim == 3 else None

    def put(self, image_sha256: str, embedding: torch.Tensor) -> Path:
        """Save an embedding `(C, h, w)` atomically; return its file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(embedding.detach().to("cpu", torch.float32).contiguous(), buffer)
        return atomic_write(self.path(image_sha256), buffer.getvalue())


def embed_image(sam: Sam, encoder: torch.nn.Module, image: npt.NDArray[np.uint8]) -> torch.Tensor:
    """One image's embedding, exactly as ``SamPredictor.set_image`` computes it.

    Args:
        sam: The model (its preprocessing: normalisation and padding).
        encoder: The image encoder to run (``sam.image_encoder``, or a faster one).
        image: An RGB uint8 array of shape `(H, W, 3)`.

    Returns:
        The embedding, a float32 tensor of shape `(C, h, w)` on the CPU.
    """
    transform = ResizeLongestSide(sam.image_encoder.img_size)
    resized = transform.apply_image(image)
    x = torch.as_tensor(resized, device=sam.device).permute(2, 0, 1).contiguous()[None]
    with torch.no_grad():
        features = encoder(sam.preprocess(x.float()))
    return features[0].to("cpu", torch.float32)


def cached_embeddings(
    sam: Sam,
    encoder: torch.nn.Module,
    keys: Sequence[str],
    read: Callable[[int], npt.NDArray[np.uint8]],
    cache: EmbeddingCache,
    on_done: Callable[[], None] | None = None,
) -> list[torch.Tensor]:
    """The embedding of every image: from the cache, or computed once and cached.

    Args:
        sam: The model.
        encoder: The image encoder to run for images not in the cache.
        keys: Each image's sha256.
        read: Reads image ``i`` (only called for images not in the cache).
        cache: The cache.
        on_done: Called after each image (a progress bar's update).

    Returns:
        One float32 tensor `(C, h, w)` per image, on the CPU.
    """
    out = []
    for i, key in enumerate(keys):
        embedding = cache.get(key)
        if embedding is None:
            cache.misses += 1
            embedding = embed_image(sam, encoder, read(i))
            cache.put(key, embedding)
        else:
            cache.hits += 1
        out.append(embedding)
        if on_done is not None:
            on_done()
    return out
