"""What the live widget sends the browser to look at: the image once, and the mask overlay.

Pictures go to the browser at :func:`display_size` (at most :data:`DISPLAY_MAX_SIDE` on the
long side); the browser stretches them over the image, and prompts stay in the image's
own pixels. The overlay is the mask alone, a small transparent palette PNG.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import numpy.typing as npt
from PIL import Image

#: The longest side of the pictures sent to the browser (the image and the overlays); the
#: browser stretches them over the image, and prompts stay in the image's own pixels.
DISPLAY_MAX_SIDE = 1024

#: The overlay's colours: the mask's fill and its outline (RGB), and their opacity.
FILL_RGB = (30, 144, 255)
OUTLINE_RGB = (255, 255, 255)
FILL_ALPHA = 120
OUTLINE_ALPHA = 255


def display_size(width: int, height: int, max_side: int = DISPLAY_MAX_SIDE) -> tuple[int, int]:
    """The size the widget sends pictures at: the image's, scaled down to ``max_side``.

    Args:
        width: The image's width in pixels.
        height: The image's height in pixels.
        max_side: The longest side sent to the browser.

    Returns:
        ``(width, height)``, unchanged when both fit, else scaled to keep the aspect.

    Example:
        ```pycon
        >>> from samkit.live import display_size
        >>> display_size(640, 480), display_size(4000, 3000)
        ((640, 480), (1024, 768))

        ```
    """
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_for_display(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The image at :func:`display_size` (unchanged when it fits).

    Args:
        pixels: An RGB uint8 image of shape `(H, W, 3)`.

    Returns:
        ``pixels`` itself when it fits, else a LANCZOS-resized copy `(h, w, 3)`.
    """
    height, width = pixels.shape[:2]
    size = display_size(width, height)
    if size == (width, height):
        return pixels
    resized = Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def mask_overlay_png(
    mask: npt.NDArray[np.bool_] | None, width: int, height: int, max_side: int = DISPLAY_MAX_SIDE
) -> str:
    """The mask alone as a small transparent palette PNG data URL.

    The browser stretches it over the image, so a large image's mask is sent at
    :func:`display_size` (nearest pixel), not at full size.

    Args:
        mask: A bool array of shape `(H, W)`, or ``None`` for an empty overlay.
        width: The image's width W.
        height: The image's height H.
        max_side: The longest side sent.

    Returns:
        ``data:image/png;base64,...`` of a palette image of :func:`display_size`
        (`(H, W)` when it fits): transparent outside the mask, the fill colour inside,
        an opaque outline on its border.
    """
    out_w, out_h = display_size(width, height, max_side)
    index = np.zeros((out_h, out_w), dtype=np.uint8)
    if mask is not None and mask.any():
        import cv2

        if (out_w, out_h) != (width, height):
            rows = (np.arange(out_h) * height) // out_h
            cols = (np.arange(out_w) * width) // out_w
            mask = mask[rows[:, None], cols[None, :]]
        index[mask] = 1
        inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=2)
        index[mask & (inner == 0)] = 2
    image = Image.fromarray(index, mode="P")
    image.putpalette([0, 0, 0, *FILL_RGB, *OUTLINE_RGB])
    buffer = io.BytesIO()
    image.save(
        buffer,
        format="PNG",
        transparency=bytes([0, FILL_ALPHA, OUTLINE_ALPHA]),
        compress_level=1,
    )
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
