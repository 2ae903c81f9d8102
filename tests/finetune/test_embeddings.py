from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

import samkit
from samkit.finetune.embeddings import EmbeddingCache, cached_embeddings, embed_image
from samkit.rings import make_ring_scene


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: on a busy CPU far faster than two that wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def sam():  # type: ignore[no-untyped-def]
    return samkit.load_sam("shapes", device="cpu")


def test_embedding_is_set_images(sam) -> None:  # type: ignore[no-untyped-def]
    image = make_ring_scene(1, 240, 320).image
    predictor = SamPredictor(sam)
    predictor.set_image(image)
    expected = predictor.get_image_embedding()[0]
    assert torch.allclose(embed_image(sam, sam.image_encoder, image), expected, atol=1e-6)


def test_computed_once_then_read_back(sam, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    images = [make_ring_scene(i, 96, 128).image for i in range(3)]
    reads: list[int] = []

    def read(i: int) -> np.ndarray:
        reads.append(i)
        return images[i]

    keys = ["a" * 64, "b" * 64, "c" * 64]
    cache = EmbeddingCache(tmp_path / "cache", "1" * 64)
    first = cached_embeddings(sam, sam.image_encoder, keys, read, cache)
    assert reads == [0, 1, 2] and (cache.misses, cache.hits) == (3, 0)
    again = EmbeddingCache(tmp_path / "cache", "1" * 64)
    second = cached_embeddings(sam, sam.image_encoder, keys, read, again)
    assert reads == [0, 1, 2] and (again.misses, again.hits) == (0, 3)  # no image read again
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    # no temporary file is left behind
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(
        cache.path(key).name for key in keys
    )


def test_key_holds_the_checkpoint_and_the_precision(tmp_path: Path) -> None:
    embedding = torch.ones(4, 2, 2)
    EmbeddingCache(tmp_path, "1" * 64).put("a" * 64, embedding)
    assert torch.equal(EmbeddingCache(tmp_path, "1" * 64).get("a" * 64), embedding)  # type: ignore[arg-type]
    assert EmbeddingCache(tmp_path, "2" * 64).get("a" * 64) is None  # another checkpoint
    assert EmbeddingCache(tmp_path, "1" * 64, "bf16").get("a" * 64) is None  # another encoder
    assert EmbeddingCache(tmp_path, "1" * 64).get("b" * 64) is None  # another image


@pytest.mark.parametrize(
    "damage",
    [
        b"",  # empty
        b"PK\x03\x04 cut off",  # a cut zip archive
        b"<html>error</html>",  # not a tensor file at all
    ],
)
def test_a_damaged_entry_is_computed_again(sam, tmp_path: Path, damage: bytes) -> None:  # type: ignore[no-untyped-def]
    cache = EmbeddingCache(tmp_path, "1" * 64)
    cache.path("a" * 64).write_bytes(damage)
    image = make_ring_scene(0, 96, 128).image
    [embedding] = cached_embeddings(sam, sam.image_encoder, ["a" * 64], lambda _: image, cache)
    assert cache.misses == 1 and embedding.shape == (128, 24, 24)
    assert torch.equal(cache.get("a" * 64), embedding)  # type: ignore[arg-type]
