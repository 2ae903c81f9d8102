"""The fidelity trial: whether a reduced-precision encoder still gives the same masks.

A bfloat16 or int8 encoder moves the embedding by about 1e-2; what matters is the
masks. :func:`mask_agreement` decodes the same prompts from both embeddings and compares
every mask by IoU, on images the int8 encoder was not calibrated on
(:func:`calibration_images`); the reduced precision is kept only when the mean IoU is
at least :data:`MIN_MASK_IOU` (:func:`holds`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide

from samkit.locations import data_dir
from samkit.shapes import make_scene

#: The least mean mask IoU (a bfloat16 or int8 encoder against the PyTorch one) for that
#: precision to be kept.
MIN_MASK_IOU = 0.98


def holds(mask_iou: float) -> bool:
    """Whether a trial's mean mask IoU is enough to keep its precision (:data:`MIN_MASK_IOU`)."""
    return mask_iou >= MIN_MASK_IOU


def refusal(precision: str, mask_iou: float) -> str:
    """Why a reduced precision was refused, for ``FastInfo.detail``.

    Args:
        precision: ``"int8"`` or ``"bf16"``.
        mask_iou: The mean mask IoU its trial reached.

    Returns:
        The text, starting ``"; "``.
    """
    return (
        f"; {precision} refused: its masks matched with mean IoU {mask_iou:.4f} "
        f"(at least {MIN_MASK_IOU} needed)"
    )


def calibration_images() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The images an int8 encoder is calibrated on, and those a trial's masks are checked on.

    Calibration: the bundled photos and three generated scenes. Check: images it was not
    calibrated on, a photo mirrored left to right and a new scene.

    Returns:
        ``(calibration, check)``, RGB ``uint8`` arrays of shape ``(H, W, 3)``.
    """
    photos = []
    for path in sorted((data_dir() / "images").glob("*.png")):
        with Image.open(path) as image:
            photos.append(np.asarray(image.convert("RGB")))
    scenes = [make_scene(seed, 480, 640).image for seed in range(3)]
    check = [np.ascontiguousarray(photos[0][:, ::-1]) if photos else scenes[0][:, ::-1]]
    check.append(make_scene(1000, 480, 640).image)
    return photos + scenes, check


def encoder_input(sam: Sam, image: np.ndarray) -> torch.Tensor:
    """An RGB image as the encoder sees it: resized, normalized, padded.

    Args:
        sam: The model (its input size, normalization and device).
        image: RGB ``uint8``, shape ``(H, W, 3)``.

    Returns:
        Float32 on the CPU, shape ``(1, 3, S, S)``.
    """
    resized = ResizeLongestSide(int(sam.image_encoder.img_size)).apply_image(image)
    x = torch.as_tensor(resized).permute(2, 0, 1)[None].float()
    return sam.preprocess(x.to(sam.device)).cpu()


def _check_prompts(size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 4 x 4 grid of points and five boxes over an image of ``size`` (input frame)."""
    h, w = size
    ys, xs = np.meshgrid((np.arange(4) + 0.5) * h / 4, (np.arange(4) + 0.5) * w / 4)
    points = torch.as_tensor(np.stack([xs.ravel(), ys.ravel()], axis=1), dtype=torch.float32)
    boxes = torch.tensor(
        [
            [0, 0, w / 2, h / 2],
            [w / 2, 0, w, h / 2],
            [0, h / 2, w / 2, h],
            [w / 2, h / 2, w, h],
            [w / 4, h / 4, 3 * w / 4, 3 * h / 4],
        ],
        dtype=torch.float32,
    )
    return points[:, None, :], torch.ones(len(points), 1, dtype=torch.int64), boxes


def _decoded_masks(sam: Sam, embedding: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The three candidate masks of each check prompt, at the input size, ``bool``."""
    points, labels, boxes = _check_prompts(size)
    found = []
    for prompt in ({"points": (points, labels)}, {"boxes": boxes}):
        sparse, dense = sam.prompt_encoder(
            points=prompt.get("points"), boxes=prompt.get("boxes"), masks=None
        )
        low, _ = sam.mask_decoder(
            image_embeddings=embedding,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
        side = int(sam.image_encoder.img_size)
        up = F.interpolate(low, (side, side), mode="bilinear", align_corners=False)
        found.append(up[..., : size[0], : size[1]] > sam.mask_threshold)
    return torch.cat(found).flatten(0, 1)


def mask_agreement(
    sam: Sam, encode: Callable[[torch.Tensor], torch.Tensor], images: list[np.ndarray]
) -> tuple[float, float]:
    """How well masks from another encoder match those from ``sam``'s own encoder.

    Each image gets 16 point prompts and 5 box prompts; each prompt's three candidate
    masks are compared by IoU (two empty masks agree).

    Args:
        sam: The model, with its PyTorch image encoder.
        encode: The other encoder (``(1, 3, S, S)`` -> embedding).
        images: RGB images.

    Returns:
        ``(mean IoU, lowest IoU)`` over every mask.
    """
    ious = []
    with torch.inference_mode():
        for image in images:
            x = encoder_input(sam, image)
            scale = int(sam.image_encoder.img_size) / max(image.shape[:2])
            size = (int(image.shape[0] * scale + 0.5), int(image.shape[1] * scale + 0.5))
            ours = _decoded_masks(sam, sam.image_encoder(x.to(sam.device)), size)
            theirs = _decoded_masks(sam, encode(x).to(sam.device), size)
            inter = (ours & theirs).flatten(1).sum(1).double()
            union = (ours | theirs).flatten(1).sum(1).double()
            ious.append(torch.where(union > 0, inter / union.clamp(min=1), 1.0))
    every = torch.cat(ious)
    return float(every.mean()), float(every.min())
