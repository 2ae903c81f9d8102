"""Write a data set to fine-tune on: images as PNG files and one COCO instance file.

- :func:`add_to_coco`: add one image you labeled (its masks from SAM, corrected with
  clicks, or from anywhere) to a COCO file, creating it if needed;
- :func:`ring_dataset`: a generated data set of ``samkit.rings`` scenes, with exact masks.

Every file is written to a temporary name and renamed (``samkit.files``), so an
interrupted call never leaves half a file; the COCO file is rewritten whole each time.

Example:
    ```python
    coco = samkit.finetune.coco.ring_dataset("datos", count=20)
    samkit.finetune.coco.add_to_coco(coco, image, live.detections, "mia.png")
    ```
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from PIL import Image

from samkit.checks import rgb_image as check_rgb_image
from samkit.files import atomic_write
from samkit.masks import stack_masks
from samkit.rings import make_ring_scene
from samkit.rle import masks_to_rle
from samkit.shapes import make_scene

#: The one category of a data set written here.
CATEGORY = {"id": 1, "name": "objeto"}

#: The folder, beside the COCO file, that the images are written to.
IMAGES_DIR = "images"

#: Seeds of the known scenes start here, far from the bundled model's evaluation seeds.
KNOWN_SEED_OFFSET = 3_000_000

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$")


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"images": [], "annotations": [], "categories": [CATEGORY]}
    content = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(content, dict) or not isinstance(content.get("images"), list):
        raise ValueError(f"{path} must be a COCO file with an 'images' list")
    return content


def _check(image: Any, masks: Any, file_name: object) -> npt.NDArray[np.bool_]:
    """The masks `(N, H, W)` of a labeled image, checked with the image and its name."""
    check_rgb_image(image)
    if not isinstance(file_name, str) or not _FILE_NAME.match(file_name):
        raise ValueError(
            f"file_name must be a .png file name of letters, digits, '_', '-' and '.', but "
            f"got {file_name!r}"
        )
    stacked = stack_masks(masks)
    if stacked.ndim != 3 or len(stacked) == 0 or stacked.shape[1:] != image.shape[:2]:
        raise ValueError(
            f"masks must be at least one mask of the image's size {image.shape[:2]}, but got "
            f"shape {stacked.shape}"
        )
    return stacked


def _append(
    content: dict[str, Any],
    folder: Path,
    image: npt.NDArray[np.uint8],
    masks: npt.NDArray[np.bool_],
    file_name: str,
) -> None:
    """Write the image into ``folder/images`` and put it and its masks into ``content``."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    atomic_write(folder / IMAGES_DIR / file_name, buffer.getvalue())
    name = f"{IMAGES_DIR}/{file_name}"
    old = {entry["id"] for entry in content["images"] if entry.get("file_name") == name}
    content["images"] = [e for e in content["images"] if e["id"] not in old]
    content["annotations"] = [a for a in content["annotations"] if a["image_id"] not in old]
    image_id = 1 + max((e["id"] for e in content["images"]), default=0)
    next_id = 1 + max((a["id"] for a in content["annotations"]), default=0)
    height, width = image.shape[:2]
    content["images"].append({"id": image_id, "file_name": name, "height": height, "width": width})
    boxes = sv.mask_to_xyxy(masks)
    for k, (rle, mask, box) in enumerate(zip(masks_to_rle(masks), masks, boxes, strict=True)):
        x0, y0, x1, y1 = (int(v) for v in box)
        content["annotations"].append(
            {
                "id": next_id + k,
                "image_id": image_id,
                "category_id": CATEGORY["id"],
                "segmentation": rle,
                "area": int(mask.sum()),
                "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
                "iscrowd": 0,
            }
        )


def add_to_coco(
    annotations: str | os.PathLike[str],
    image: npt.NDArray[np.uint8],
    masks: sv.Detections | npt.NDArray[Any],
    file_name: str,
) -> Path:
    """Add an image and its masks to a COCO file; the image goes to ``images/`` beside it.

    An image of the same ``file_name`` already in the file is replaced (its masks too),
    so running a labeling cell again does not add it twice.

    Args:
        annotations: The COCO JSON file (created when missing; its folder is created).
        image: The RGB uint8 image, shape `(H, W, 3)`.
        masks: Its objects' masks: ``sv.Detections`` with masks, or a bool array
            `(N, H, W)` of the image's size, N >= 1.
        file_name: The image's file name, a ``.png`` name without folders.

    Returns:
        The COCO file's path.

    Raises:
        ValueError: If the image, the masks or the name is not valid, the masks are not
            the image's size, or the file is not a COCO file.
    """
    stacked = _check(image, masks, file_name)
    path = Path(annotations).expanduser()
    (path.parent / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    content = _read(path)
    _append(content, path.parent, image, stacked, file_name)
    return atomic_write(path, json.dumps(content, indent=1))


def ring_dataset(
    folder: str | os.PathLike[str],
    count: int = 20,
    seed: int = 0,
    height: int = 480,
    width: int = 640,
    known: float = 0.0,
) -> Path:
    """Write generated ring scenes and their exact masks as a COCO data set.

    Args:
        folder: Where to write ``annotations.json`` and ``images/`` (created when missing).
        count: How many images, at least 1.
        seed: Ring scene ``i`` is ``samkit.rings.make_ring_scene(seed + i)``.
        height: Image height in pixels.
        width: Image width in pixels.
        known: The share of images (every ``round(1 / known)``-th) that are scenes the
            bundled model already knows (``samkit.shapes.make_scene``, seeds far from
            its evaluation's): mixed in so that fine-tuning does not forget them.

    Returns:
        The path of ``annotations.json``.

    Raises:
        ValueError: If ``count``, ``seed`` or ``known`` is not valid.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an int >= 1, but got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, but got {seed!r}")
    if isinstance(known, bool) or not isinstance(known, int | float) or not 0 <= known < 1:
        raise ValueError(f"known must be a number in [0, 1), but got {known!r}")
    path = Path(folder).expanduser() / "annotations.json"
    (path.parent / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    content = _read(path)
    every = round(1 / known) if known else 0
    for i in range(count):
        if every and i % every == every - 1:
            scene = make_scene(KNOWN_SEED_OFFSET + seed + i, height, width)
            name = f"figuras_{seed + i:05d}.png"
        else:
            scene = make_ring_scene(seed + i, height, width)
            name = f"anillos_{seed + i:05d}.png"
        _append(content, path.parent, scene.image, scene.masks, name)
    return atomic_write(path, json.dumps(content, indent=1))
