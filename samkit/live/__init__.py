"""Live segmentation in the notebook: draw a box or click points, and the mask follows.

:class:`LiveSegmenter` is a small anywidget widget. The front end (``live.js`` and
``live.css``, shipped in this folder and read once at import) shows the image, lets
you drag a box, click include and exclude points, move or delete them, and shows SAM's
answer as a mask overlay. Every prompt change is sent to the kernel, where
``SamPredictor.predict`` runs on the embedding computed once by ``set_image``: each
prompt costs only the prompt encoder and the mask decoder. The kernel answers with a
small palette PNG of the mask alone; the image itself is sent once.

The state is plain traitlets, so it is readable (and settable) from the next cell:
``.box``, ``.points``, ``.labels``, ``.masks``, ``.scores``, ``.detections``.

The modules:

- ``samkit.live.widget``: :class:`LiveSegmenter`, its front end ``LIVE_JS`` and ``LIVE_CSS``;
- ``samkit.live.prompt``: the box, points and labels, checked (:class:`PromptError`);
- ``samkit.live.decoder``: one prompt through SAM's decoder, its threads, ``mask_input``;
- ``samkit.live.embedding``: the image's embedding, computed once per predictor;
- ``samkit.live.overlay``: the display size and the mask overlay PNG;
- ``samkit.live.texts``: what the widget says, in Spanish (``DEFAULT_TEXTS``).
"""

from __future__ import annotations

from samkit.live.overlay import (
    DISPLAY_MAX_SIDE,
    FILL_ALPHA,
    FILL_RGB,
    OUTLINE_ALPHA,
    OUTLINE_RGB,
    display_size,
    mask_overlay_png,
)
from samkit.live.prompt import PromptError, check_box, check_labels, check_points
from samkit.live.texts import DEFAULT_TEXTS
from samkit.live.widget import LIVE_CSS, LIVE_JS, LiveSegmenter

__all__ = [
    "DEFAULT_TEXTS",
    "DISPLAY_MAX_SIDE",
    "FILL_ALPHA",
    "FILL_RGB",
    "LIVE_CSS",
    "LIVE_JS",
    "OUTLINE_ALPHA",
    "OUTLINE_RGB",
    "LiveSegmenter",
    "PromptError",
    "check_box",
    "check_labels",
    "check_points",
    "display_size",
    "mask_overlay_png",
]
