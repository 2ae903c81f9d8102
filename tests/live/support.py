"""What the tests of ``samkit.live`` share: a counting predictor and mask helpers."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image
from segment_anything import SamPredictor

import samkit


class CountingPredictor(SamPredictor):
    """A ``SamPredictor`` that counts its ``predict`` and ``set_image`` calls.

    Set ``fail`` to an exception and the next ``predict`` raises it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.predict_calls: list[dict[str, Any]] = []
        self.set_image_calls = 0
        self.fail: Exception | None = None

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self.predict_calls.append(kwargs)
        if self.fail is not None:
            raise self.fail
        return super().predict(*args, **kwargs)

    def set_image(self, *args: Any, **kwargs: Any) -> None:
        self.set_image_calls += 1
        super().set_image(*args, **kwargs)


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    return float((mask & truth).sum() / (mask | truth).sum())


def xyxy(sample: samkit.Sample) -> list[float]:
    return samkit.bboxes_to_xyxy([sample.default_box])[0].tolist()


def decode(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def overlay_alpha(url: str) -> np.ndarray:
    return np.asarray(decode(url).convert("RGBA"))[..., 3]
