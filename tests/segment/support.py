"""What the segment tests share: small generated scenes, the CLI's quick settings, masks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from samkit.export import rle_to_masks
from samkit.shapes import Scene, make_scene

#: Small images and a coarse grid keep every run to a few seconds on a busy CPU.
FAST = ["--model", "shapes", "--device", "cpu", "--points-per-side", "4", "--no-progress"]
SIZE = (64, 80)  # (height, width)


def scene(seed: int, size: tuple[int, int] = SIZE) -> Scene:
    return make_scene(seed, height=size[0], width=size[1], n_shapes=2, min_size=0.3)


def decode(annotation: dict[str, Any]) -> np.ndarray:
    """An annotation's mask, decoded by pycocotools (through samkit, which quiets NumPy 2)."""
    return rle_to_masks([annotation["segmentation"]])[0]


def scenes_folder(folder: Path, count: int, size: tuple[int, int] = SIZE) -> list[Scene]:
    folder.mkdir(parents=True)
    scenes = [scene(seed, size) for seed in range(count)]
    for seed, made in enumerate(scenes):
        Image.fromarray(made.image).save(folder / f"{seed:04d}.png")
    return scenes


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))
