"""Text prompts with SAM 3: an image and phrases to ``sv.Detections``.

SAM 3 finds every instance of a concept named in words ("gato", "casco amarillo"): for
each phrase it proposes instances (masks, boxes) with a score, and a presence score for
the phrase in the whole image. :func:`segment_text` runs the image encoder once and the
text side once per phrase, keeps the instances whose score passes ``threshold``, and
returns them as one ``sv.Detections`` with the phrase as class name.

Example:
    ```python
    sam3 = samkit.hf.load_hf("sam3")
    detections = samkit.hf.segment_text(sam3, image, ["gato", "casco amarillo"])
    detections.data["class_name"]           # the phrase of each mask
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
import torch

from samkit.hf.load import HfModel


def check_phrases(phrases: object) -> list[str]:
    """``phrases`` as a list of distinct, non-empty strings (one string is one phrase).

    Raises:
        ValueError: If there is none, one is not a non-empty string, or one repeats.
    """
    listed = [phrases] if isinstance(phrases, str) else phrases
    if not isinstance(listed, Sequence) or not listed:
        raise ValueError(f"phrases must be a phrase or a list of phrases, but got {phrases!r}")
    cleaned = []
    for index, phrase in enumerate(listed):
        if not isinstance(phrase, str) or not phrase.strip():
            raise ValueError(f"phrase {index} must be a non-empty string, but got {phrase!r}")
        cleaned.append(" ".join(phrase.split()))
    repeated = sorted({p for p in cleaned if cleaned.count(p) > 1})
    if repeated:
        raise ValueError(f"phrases must be distinct, but {repeated[0]!r} is given twice")
    return cleaned


def _check_inputs(hf: object, image: object, threshold: object) -> npt.NDArray[np.uint8]:
    if not isinstance(hf, HfModel) or hf.model_type != "sam3":
        raise ValueError(
            "segment_text needs SAM 3 from samkit.hf.load_hf('sam3'), but got "
            f"{getattr(hf, 'model_type', hf)!r}"
        )
    hf.check()
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(
            f"image must be RGB uint8 of shape (H, W, 3), but got {pixels.dtype} of shape "
            f"{pixels.shape}"
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise ValueError(f"threshold must be a number from 0 to 1, but got {threshold!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a number from 0 to 1, but got {threshold!r}")
    return pixels


@torch.inference_mode()
def segment_text(
    hf: HfModel,
    image: npt.NDArray[np.uint8],
    phrases: str | Sequence[str],
    threshold: float = 0.5,
    mask_threshold: float = 0.5,
) -> sv.Detections:
    """Every instance of each phrase in the image, as one ``sv.Detections``.

    Args:
        hf: SAM 3, from ``samkit.hf.load_hf("sam3")``.
        image: RGB uint8 `(H, W, 3)`.
        phrases: One phrase, or several ("gato", "casco amarillo"); each its own class.
        threshold: Keep instances whose score (instance times presence) is at least this.
        mask_threshold: Probability above which a pixel is in the mask.

    Returns:
        ``sv.Detections`` with ``xyxy`` `(N, 4)` float32, ``mask`` `(N, H, W)` bool,
        ``confidence`` `(N,)` float32, ``class_id`` `(N,)` (the phrase's index) and
        ``data["class_name"]`` (the phrase); by phrase, each phrase's best first.

    Raises:
        ValueError: If an argument is not valid.
        RuntimeError: If the model was released (another model was loaded since).
    """
    pixels = _check_inputs(hf, image, threshold)
    names = check_phrases(phrases)
    height, width = pixels.shape[:2]
    processor, model = hf.processor, hf.model
    inputs = processor(images=np.array(pixels), return_tensors="pt")  # writable, for torch
    vision = model.get_vision_features(pixel_values=inputs["pixel_values"].to(hf.device, hf.dtype))
    parts: list[sv.Detections] = []
    for class_id, phrase in enumerate(names):
        text = processor(text=phrase, return_tensors="pt").to(hf.device)
        output = model(vision_embeds=vision, **text)
        found = processor.post_process_instance_segmentation(
            output,
            threshold=float(threshold),
            mask_threshold=mask_threshold,
            target_sizes=[(height, width)],
        )[0]
        parts.append(_detections(found, class_id, phrase, (height, width)))
    return sv.Detections.merge(parts)


def _detections(
    found: dict[str, Any], class_id: int, phrase: str, size: tuple[int, int]
) -> sv.Detections:
    """One phrase's post-processed instances as ``sv.Detections``, best first."""
    scores = found["scores"].float().cpu().numpy().astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    masks = found["masks"].cpu().numpy().astype(bool).reshape(-1, *size)[order]
    xyxy = found["boxes"].float().cpu().numpy().astype(np.float32).reshape(-1, 4)[order]
    return sv.Detections(
        xyxy=xyxy,
        mask=masks,
        confidence=scores[order],
        class_id=np.full(len(order), class_id, dtype=int),
        data={"class_name": np.array([phrase] * len(order), dtype=object)},
    )
