"""Live segmentation in the notebook: draw a box or click points, and the mask follows.

:class:`LiveSegmenter` is a small anywidget widget. The front end (``live.js``, shipped
in the package and read once at import) shows the image, lets you drag a box, click
include and exclude points, move or delete them, and shows SAM's answer as a mask
overlay. Every prompt change is sent to the kernel, where ``SamPredictor.predict`` runs
on the embedding computed once by ``set_image``: each prompt costs only the prompt
encoder and the mask decoder. The kernel answers with a small palette PNG of the mask
alone; the image itself is sent once.

The state is plain traitlets, so it is readable (and settable) from the next cell:
``.box``, ``.points``, ``.labels``, ``.masks``, ``.scores``, ``.detections``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import math
import os
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import anywidget
import numpy as np
import numpy.typing as npt
import supervision as sv
import torch
import traitlets
from PIL import Image

from samkit import locations
from samkit.convert import prediction_to_detections
from samkit.images import check_rgb_image, encode_image, load_image
from samkit.prompts import bboxes_to_xyxy, clip_box

#: The front end, an ES module read from the package once (no build step, no CDN).
LIVE_JS = locations.package_file("live.js").read_text(encoding="utf-8")

#: What the widget's controls say (the tutorial speaks Spanish); override with ``texts=``.
DEFAULT_TEXTS: dict[str, str] = {
    "clear": "Borrar todo",
    "help": (
        "Arrastrá: caja · clic: incluir · Shift+clic o clic derecho: excluir · "
        "arrastrá un punto o la caja para moverlos · clic sobre un punto o la × de la "
        "caja para borrarlos"
    ),
    "candidates": "Candidatas (hacé clic para elegir):",
    "empty": "Dibujá una caja o hacé clic sobre un objeto.",
}

#: The longest side of the pictures sent to the browser (the image and the overlays); the
#: browser stretches them over the image, and prompts stay in the image's own pixels.
DISPLAY_MAX_SIDE = 1024

#: The overlay's colours: the mask's fill and its outline (RGB), and their opacity.
FILL_RGB = (30, 144, 255)
OUTLINE_RGB = (255, 255, 255)
FILL_ALPHA = 120
OUTLINE_ALPHA = 255


class PromptError(traitlets.TraitError, ValueError):
    """A box, point or label that the widget cannot use (a ``ValueError``)."""


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise PromptError(f"{what} must be a number, but got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise PromptError(f"{what} must be a finite number, but got {number}")
    return number


def check_box(box: Any, width: int, height: int) -> list[float]:
    """Return ``box`` as ``[x0, y0, x1, y1]`` in image pixels, or ``[]`` for no box.

    Args:
        box: ``None`` or an empty sequence (no box); four numbers in xyxy; an array of
            shape `(4,)` or `(1, 4)`; or a jupyter_bbox_widget dict (``x``, ``y``,
            ``width``, ``height``).
        width: The image's width in pixels.
        height: The image's height in pixels.

    Returns:
        ``[]`` or four floats with ``0 <= x0 < x1 <= width`` and ``0 <= y0 < y1 <= height``
            (a box past the edge is clipped to the image: ``samkit.prompts.clip_box``).

    Raises:
        PromptError: (a ``ValueError``) If it is none of those, or lies wholly outside
            the image.
    """
    if box is None:
        return []
    if isinstance(box, Mapping):
        try:
            box = bboxes_to_xyxy([box])[0].tolist()
        except ValueError as error:
            raise PromptError(f"box: {error}") from None
    values = np.asarray(box, dtype=object).reshape(-1).tolist() if not isinstance(box, str) else box
    if isinstance(values, str) or len(values) not in (0, 4):
        raise PromptError(
            f"box must be [x0, y0, x1, y1] (4 numbers, image pixels) or [] for no box, "
            f"but got {box!r}"
        )
    if not values:
        return []
    x0, y0, x1, y1 = (_finite(v, f"box[{i}]") for i, v in enumerate(values))
    if not (x1 > x0 and y1 > y0):
        raise PromptError(f"box must have x1 > x0 and y1 > y0 (xyxy), but got {[x0, y0, x1, y1]}")
    try:  # the rule of samkit.prompts: clipped, refused only when wholly outside
        return [round(v, 1) for v in clip_box([x0, y0, x1, y1], (height, width))]
    except ValueError as error:
        raise PromptError(str(error)) from None


def check_points(points: Any, width: int, height: int) -> list[list[float]]:
    """Return ``points`` as a list of ``[x, y]`` pixels inside the image.

    Args:
        points: ``None``, or a sequence of ``(x, y)`` pairs (or an array of shape `(N, 2)`).
        width: The image's width in pixels.
        height: The image's height in pixels.

    Returns:
        A list of ``[x, y]`` floats (empty for no points).

    Raises:
        PromptError: (a ``ValueError``) If a point is not two numbers inside the image.
    """
    if points is None:
        return []
    if isinstance(points, np.ndarray):
        points = points.tolist()
    if isinstance(points, (str, bytes, Mapping)) or not isinstance(points, Sequence):
        raise PromptError(f"points must be a list of (x, y) pairs, but got {points!r}")
    out = []
    for i, point in enumerate(points):
        if isinstance(point, np.ndarray):
            point = point.tolist()
        if isinstance(point, (str, bytes)) or not isinstance(point, Sequence) or len(point) != 2:
            raise PromptError(f"points[{i}] must be an (x, y) pair, but got {point!r}")
        x, y = (_finite(v, f"points[{i}]") for v in point)
        if not (0 <= x <= width and 0 <= y <= height):
            raise PromptError(
                f"points[{i}] must lie inside the {width}x{height} image, but got {[x, y]}"
            )
        out.append([round(x, 1), round(y, 1)])
    return out


def check_labels(labels: Any) -> list[int]:
    """Return ``labels`` as a list of 1 (include) and 0 (exclude).

    Raises:
        PromptError: (a ``ValueError``) If a label is not 0 or 1.
    """
    if labels is None:
        return []
    if isinstance(labels, np.ndarray):
        labels = labels.tolist()
    if isinstance(labels, (str, bytes, Mapping)) or not isinstance(labels, Sequence):
        raise PromptError(f"labels must be a list of 1 (include) and 0 (exclude), got {labels!r}")
    out = []
    for i, label in enumerate(labels):
        if isinstance(label, bool) or label not in (0, 1):
            raise PromptError(f"labels[{i}] must be 1 (include) or 0 (exclude), but got {label!r}")
        out.append(int(label))
    return out


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


#: The image each predictor holds, as ``(features, digest)``: a second widget on the same
#: predictor and image reuses the embedding instead of computing it again.
_EMBEDDED: weakref.WeakKeyDictionary[Any, tuple[Any, str]] = weakref.WeakKeyDictionary()


def _held(predictor: Any) -> tuple[Any, str] | None:
    """The ``(features, digest)`` remembered for ``predictor``, if any."""
    try:
        return _EMBEDDED.get(predictor)
    except TypeError:  # a predictor that cannot be weakly referenced is not remembered
        return None


def _remember(predictor: Any, features: Any, digest: str) -> None:
    try:
        _EMBEDDED[predictor] = (features, digest)
    except TypeError:
        pass


def _for_display(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The image at :func:`display_size` (unchanged when it fits)."""
    height, width = pixels.shape[:2]
    size = display_size(width, height)
    if size == (width, height):
        return pixels
    resized = Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8)


def _is_prefix(old: list[list[float]], new: list[list[float]]) -> bool:
    return len(old) < len(new) and new[: len(old)] == old


class LiveSegmenter(anywidget.AnyWidget):
    """A widget that segments as you draw: box, include and exclude clicks, at once.

    The image's embedding is computed once (``predictor.set_image``); each change of the
    prompt runs only SAM's prompt encoder and mask decoder, in the kernel, and redraws
    the mask overlay. The front end keeps at most one prompt in flight and sends only
    the latest one when the answer comes back, so a drag never queues a backlog.

    In the widget: drag on the image to draw a box (it replaces the old one); click to
    add an include point; Shift+click or right-click for an exclude point; drag a point
    or the box to move it, drag a corner to resize the box; click a point, or the box's
    ×, to delete it; "Borrar todo" clears everything. With ``multimask=True`` the three
    candidates appear under the image and a click picks one.

    Attributes:
        box: The box, ``[x0, y0, x1, y1]`` in image pixels, or ``[]``.
        points: The clicked points, a list of ``[x, y]`` in image pixels.
        labels: One label per point: 1 include, 0 exclude.
        multimask: Whether SAM returns three candidates (else one).
        selected: The candidate shown (index into ``masks``); the best score after
            every new prompt, or the one clicked.
        score: SAM's predicted IoU of the shown mask (``None`` with no prompt).
        ms: Milliseconds the last prompt took in the kernel (decoder and overlay).
        status: The line shown under the image (score and milliseconds).

    Example:
        ```python
        predictor = SamPredictor(samkit.load_sam())
        live = samkit.LiveSegmenter(predictor, sample.image, box=sample.default_box)
        live  # draw; then, in the next cell:
        print(live.box, live.scores)
        samkit.annotate(sample.image, live.detections)
        ```
    """

    _esm = traitlets.Unicode(LIVE_JS).tag(sync=True)

    image = traitlets.Unicode("").tag(sync=True)
    width = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(0).tag(sync=True)
    box: traitlets.Any = traitlets.Any([]).tag(sync=True)
    points: traitlets.Any = traitlets.Any([]).tag(sync=True)
    labels: traitlets.Any = traitlets.Any([]).tag(sync=True)
    multimask = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.Int(0).tag(sync=True)
    request = traitlets.Int(0).tag(sync=True)
    answered = traitlets.Int(0).tag(sync=True)
    overlay = traitlets.Unicode("").tag(sync=True)
    candidates: traitlets.List[dict[str, Any]] = traitlets.List([]).tag(sync=True)
    score = traitlets.Float(None, allow_none=True).tag(sync=True)
    ms = traitlets.Float(0.0).tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    texts = traitlets.Dict({}).tag(sync=True)

    def __init__(
        self,
        predictor: Any,
        image: npt.NDArray[np.uint8] | str | os.PathLike[str],
        *,
        box: Any = None,
        points: Any = None,
        labels: Any = None,
        value: Mapping[str, Any] | None = None,
        multimask: bool = True,
        reuse_logits: bool = True,
        texts: Mapping[str, str] | None = None,
        decoder_threads: int | None = None,
        embedded: bool = False,
    ) -> None:
        """Show ``image`` and answer every prompt with ``predictor``.

        Args:
            predictor: A ``segment_anything.SamPredictor``. ``set_image(image)`` is
                called here, once (not again for a second widget on the same predictor
                and image, nor with ``embedded=True``); if something gives the predictor
                another image later, the widget sets its own again before the next
                prompt.
            image: The RGB uint8 image `(H, W, 3)` the predictor segments, or its path.
            box: A preset box: xyxy (4 numbers) or a jupyter_bbox_widget dict such as
                ``sample.default_box``. The mask is computed at once, so a run with no
                front end (nbval) has it too.
            points: Preset points, a sequence of ``(x, y)``.
            labels: One label per preset point: 1 include, 0 exclude (default: all 1).
            value: The preset prompt as one dict with keys ``box``, ``points``,
                ``labels`` (what :attr:`value` returns); instead of the three above.
            multimask: Ask SAM for three candidates and show them to pick from.
            reuse_logits: When only points were added (same box), give SAM its previous
                low-resolution logits as ``mask_input``, so it corrects its answer.
            texts: Replacements for the controls' words (keys of ``DEFAULT_TEXTS``).
            embedded: ``True`` says that ``predictor.set_image(image)`` was already
                called on this very image, so its embedding is not computed again
                (checked as far as it can be: an image is set, of this size).
            decoder_threads: CPU threads for each prompt's decoder run; ``None`` gives
                1 for a model on the CPU (the decoder is small: split across threads
                it waits more than it computes, several times slower on a busy
                machine) and leaves a GPU model as it is. The embedding
                (``set_image``) always runs with torch's own thread setting.

        Raises:
            ValueError: If the image is not RGB uint8, the predictor is not a
                ``SamPredictor``, or a preset is not a valid box, point or label.
        """
        if value is not None:
            if box is not None or points is not None or labels is not None:
                raise ValueError("give either value= or box=/points=/labels=, not both")
            if not isinstance(value, Mapping) or set(value) - {"box", "points", "labels"}:
                raise ValueError(
                    f"value must be a dict with keys 'box', 'points', 'labels', but got {value!r}"
                )
            box, points, labels = value.get("box"), value.get("points"), value.get("labels")
        if not callable(getattr(predictor, "predict", None)) or not hasattr(predictor, "set_image"):
            raise ValueError(
                "predictor must be a segment_anything.SamPredictor, "
                f"but got {type(predictor).__name__}"
            )
        if isinstance(image, (str, os.PathLike)):
            image = load_image(image)
        pixels = check_rgb_image(image)
        height, width = pixels.shape[:2]
        unknown = set(texts or {}) - set(DEFAULT_TEXTS)
        if unknown:
            raise ValueError(
                f"texts has unknown keys {sorted(unknown)}; the keys are {sorted(DEFAULT_TEXTS)}"
            )
        if decoder_threads is not None and (
            isinstance(decoder_threads, bool)
            or not isinstance(decoder_threads, int)
            or decoder_threads < 1
        ):
            raise ValueError(
                f"decoder_threads must be a positive int or None, but got {decoder_threads!r}"
            )
        self._predictor = predictor
        self._reuse_logits = bool(reuse_logits)
        on_cpu = str(getattr(predictor, "device", "cpu")).startswith("cpu")
        self._threads = decoder_threads if decoder_threads is not None else (1 if on_cpu else None)
        self._pixels = pixels
        self._digest = hashlib.blake2b(pixels.tobytes(), digest_size=16).hexdigest()
        self._features: Any = None
        self.embedding_ms = 0.0
        if embedded:
            size = tuple(getattr(predictor, "original_size", None) or ())
            if not getattr(predictor, "is_image_set", False) or size != (height, width):
                held_size = "no image" if not size else f"an image of {size[1]}x{size[0]}"
                raise ValueError(
                    f"embedded=True, but the predictor holds {held_size}, not this "
                    f"{width}x{height} image: call predictor.set_image(image) first, or "
                    "leave embedded=False and the widget computes the embedding"
                )
            self._features = predictor.features
            _remember(predictor, self._features, self._digest)
        else:
            held = _held(predictor)
            if (
                held is not None
                and held[1] == self._digest
                and held[0] is getattr(predictor, "features", None)
            ):
                self._features = held[0]  # this predictor already holds this image's embedding
            else:
                self._embed()
        self._masks = np.zeros((0, height, width), dtype=bool)
        self._scores = np.zeros((0,), dtype=np.float32)
        self._logits = np.zeros((0, 1, 1), dtype=np.float32)
        self._overlays: list[str] = []
        self._prompt_key: tuple[Any, ...] | None = None
        self._last: dict[str, Any] | None = None
        self.used_mask_input = False
        points_list = check_points(points, width, height)
        if labels is None:
            labels = [1] * len(points_list)
        super().__init__(
            width=width,
            height=height,
            image=encode_image(_for_display(pixels), image_format="png"),
            multimask=bool(multimask),
            texts={**DEFAULT_TEXTS, **(texts or {})},
        )
        with self.hold_trait_notifications():
            self.box = check_box(box, width, height)
            self.points = points_list
            self.labels = check_labels(labels)
        if not self.box and not self.points:
            self._warm_up()
        self._update()

    def _embed(self) -> None:
        """Compute the image's embedding (``set_image``), once per image and predictor."""
        started = time.perf_counter()
        self._predictor.set_image(self._pixels)
        self.embedding_ms = round((time.perf_counter() - started) * 1000, 1)
        self._features = getattr(self._predictor, "features", None)
        _remember(self._predictor, self._features, self._digest)

    @contextlib.contextmanager
    def _decoder_threads(self) -> Iterator[None]:
        """Run the prompt decoder on ``self._threads`` CPU threads (``None``: as set)."""
        if self._threads is None:
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _warm_up(self) -> None:
        """One throwaway prompt, so that the first one drawn answers as fast as the rest."""
        center = np.array([[self.width / 2, self.height / 2]], dtype=np.float32)
        with self._decoder_threads():
            self._predictor.predict(
                point_coords=center, point_labels=np.array([1]), multimask_output=True
            )

    # ------------------------------------------------------------------ validation

    @traitlets.validate("box")
    def _valid_box(self, proposal: Any) -> list[float]:
        return check_box(proposal["value"], self.width, self.height)

    @traitlets.validate("points")
    def _valid_points(self, proposal: Any) -> list[list[float]]:
        return check_points(proposal["value"], self.width, self.height)

    @traitlets.validate("labels")
    def _valid_labels(self, proposal: Any) -> list[int]:
        return check_labels(proposal["value"])

    @traitlets.validate("selected")
    def _valid_selected(self, proposal: Any) -> int:
        value = proposal["value"]
        count = len(getattr(self, "_masks", ()))
        if value == 0 or 0 <= value < count:
            return int(value)
        raise PromptError(
            f"selected must be the index of one of the {count} candidate mask(s) "
            f"(0 to {max(count - 1, 0)}), but got {value}"
        )

    @traitlets.observe("box", "points", "labels", "multimask", "selected", "request")
    def _on_change(self, change: Any) -> None:
        self._update()

    # ------------------------------------------------------------------ predicting

    def _prompt(self) -> tuple[Any, ...]:
        return (tuple(self.box), tuple(map(tuple, self.points)), tuple(self.labels), self.multimask)

    def _update(self) -> None:
        """Predict if the prompt changed, redraw if the choice changed, answer the request."""
        if len(self.labels) != len(self.points):
            # a Python caller sets points and labels one after the other: keep the mask
            # and say what is missing until they agree (the front end sends both at once)
            self.error = (
                f"labels has {len(self.labels)} entries for {len(self.points)} points: "
                "give one label (1 include, 0 exclude) per point"
            )
            self.status = self.error
            self.answered = self.request
            return
        with self.hold_sync():
            self.error = ""
            key = self._prompt()
            if key != self._prompt_key:
                self._predict()
                self._prompt_key = key
                self._show(int(np.argmax(self._scores)) if len(self._scores) else 0)
            elif 0 <= self.selected < len(self._overlays):
                self._show(self.selected)
            if self.answered != self.request:
                self.answered = self.request

    def _predict(self) -> None:
        started = time.perf_counter()
        height, width = self.height, self.width
        box = np.asarray(self.box, dtype=np.float32) if self.box else None
        coords = np.asarray(self.points, dtype=np.float32).reshape(-1, 2) if self.points else None
        labels = np.asarray(self.labels, dtype=np.int32) if self.points else None
        mask_input = None
        last = self._last
        if (
            self._reuse_logits
            and last is not None
            and last["box"] == self.box
            and _is_prefix(last["points"], self.points)
            and last["labels"] == self.labels[: len(last["points"])]
        ):
            mask_input = last["logits"][None]
        self.used_mask_input = mask_input is not None
        if box is None and coords is None:
            self._masks = np.zeros((0, height, width), dtype=bool)
            self._scores = np.zeros((0,), dtype=np.float32)
            self._logits = np.zeros((0, 1, 1), dtype=np.float32)
            self._overlays = []
            self._last = None
        else:
            if getattr(self._predictor, "features", None) is not self._features:
                self._embed()  # someone gave the predictor another image since
            try:
                with self._decoder_threads():
                    masks, scores, logits = self._predictor.predict(
                        point_coords=coords,
                        point_labels=labels,
                        box=box,
                        mask_input=mask_input,
                        multimask_output=self.multimask,
                    )
            except Exception as error:
                self.error = f"{type(error).__name__}: {error}"
                self.status = self.error
                raise
            self.error = ""
            self._masks = np.asarray(masks, dtype=bool)
            self._scores = np.asarray(scores, dtype=np.float32)
            self._logits = np.asarray(logits, dtype=np.float32)
            self._overlays = [mask_overlay_png(m, width, height) for m in self._masks]
        self.ms = round((time.perf_counter() - started) * 1000, 1)
        self.candidates = (
            [
                {"overlay": o, "score": round(float(s), 3)}
                for o, s in zip(self._overlays, self._scores, strict=True)
            ]
            if self.multimask
            else []
        )

    def _show(self, index: int) -> None:
        """Make candidate ``index`` the shown mask (overlay, score, status)."""
        if not self._overlays:
            self.selected = 0
            self.overlay = mask_overlay_png(None, self.width, self.height)
            self.score = None
            self.status = self.texts.get("empty", "")
            self._last = None
            return
        self.selected = index
        self.overlay = self._overlays[index]
        self.score = round(float(self._scores[index]), 3)
        refined = " · mask_input" if self.used_mask_input else ""
        self.status = f"score {self.score:.3f} · {self.ms:.0f} ms{refined}"
        self._last = {
            "box": list(self.box),
            "points": [list(p) for p in self.points],
            "labels": list(self.labels),
            "logits": self._logits[index],
        }

    # ------------------------------------------------------------------ reading

    @property
    def masks(self) -> npt.NDArray[np.bool_]:
        """SAM's masks for the current prompt, bool `(C, H, W)` (C is 3, 1, or 0)."""
        return self._masks

    @property
    def scores(self) -> npt.NDArray[np.float32]:
        """SAM's predicted IoU of every mask in :attr:`masks`, shape `(C,)`."""
        return self._scores

    @property
    def logits(self) -> npt.NDArray[np.float32]:
        """The low-resolution logits of every mask, shape `(C, h, w)`."""
        return self._logits

    @property
    def mask(self) -> npt.NDArray[np.bool_] | None:
        """The shown mask, bool `(H, W)`, or ``None`` with no prompt."""
        return self._masks[self.selected] if len(self._masks) else None

    @property
    def detections(self) -> sv.Detections:
        """The shown mask as ``sv.Detections`` (one row; empty with no prompt)."""
        if not len(self._masks):
            return sv.Detections.empty()
        i = self.selected
        return prediction_to_detections(
            self._masks[i : i + 1], self._scores[i : i + 1], self._logits[i : i + 1]
        )

    @property
    def value(self) -> dict[str, Any]:
        """The prompt: ``{"box": [...], "points": [[x, y], ...], "labels": [...]}``."""
        return {
            "box": list(self.box),
            "points": [list(p) for p in self.points],
            "labels": list(self.labels),
        }

    @value.setter
    def value(self, value: Mapping[str, Any]) -> None:
        if not isinstance(value, Mapping) or set(value) - {"box", "points", "labels"}:
            raise ValueError(
                f"value must be a dict with keys 'box', 'points', 'labels', but got {value!r}"
            )
        points = check_points(value.get("points"), self.width, self.height)
        labels = value.get("labels")
        with self.hold_trait_notifications():
            self.box = check_box(value.get("box"), self.width, self.height)
            self.points = points
            self.labels = check_labels([1] * len(points) if labels is None else labels)

    def clear(self) -> None:
        """Remove the box and every point (the mask goes with them)."""
        self.value = {"box": [], "points": [], "labels": []}

    def __repr__(self) -> str:
        score = "None" if self.score is None else f"{self.score:.3f}"
        return (
            f"LiveSegmenter(image {self.width}x{self.height}, box={self.box}, "
            f"points={self.points}, labels={self.labels}, score={score})"
        )
