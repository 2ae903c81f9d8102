"""The live widget: draw a box or click points, and the mask follows.

:class:`LiveSegmenter` is a small anywidget widget. Its front end (``live.js`` and
``live.css``, shipped in this folder and read once at import) sends every prompt
change; here the prompt is checked (:mod:`samkit.live.prompt`), answered by SAM's
decoder on the embedding computed once (:mod:`samkit.live.decoder`,
:mod:`samkit.live.embedding`), and the mask goes back as a small overlay PNG
(:mod:`samkit.live.overlay`) with a Spanish status line (:mod:`samkit.live.texts`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import anywidget
import numpy as np
import numpy.typing as npt
import supervision as sv
import traitlets

from samkit import locations
from samkit.convert import prediction_to_detections
from samkit.images import check_rgb_image, encode_image, load_image
from samkit.live.decoder import (
    Answer,
    Decoder,
    ShownPrompt,
    check_predictor,
    choose_decoder_threads,
)
from samkit.live.embedding import ImageEmbedding
from samkit.live.overlay import image_for_display, mask_overlay_png
from samkit.live.prompt import (
    check_box,
    check_labels,
    check_points,
    check_selected,
    check_value,
    labels_for,
    preset_prompt,
)
from samkit.live.texts import failure_line, mismatch_line, status_line, widget_texts

#: The front end, an ES module read from the package once (no build step, no CDN).
LIVE_JS = locations.package_file("live", "live.js").read_text(encoding="utf-8")
#: Its style sheet (every class starts with ``samkit-live``).
LIVE_CSS = locations.package_file("live", "live.css").read_text(encoding="utf-8")


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
        status: The line shown under the image, in Spanish (puntaje and milliseconds).
        error: What went wrong with the last prompt, in English (``""`` when nothing).
        used_mask_input: Whether the last prompt gave SAM its previous logits.

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
    _css = traitlets.Unicode(LIVE_CSS).tag(sync=True)

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
            texts: Replacements for the widget's words (keys of
                :data:`samkit.live.texts.DEFAULT_TEXTS`).
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
        box, points, labels = preset_prompt(value, box, points, labels)
        check_predictor(predictor)
        pixels = check_rgb_image(
            load_image(image) if isinstance(image, (str, os.PathLike)) else image
        )
        height, width = pixels.shape[:2]
        all_texts = widget_texts(texts)
        self._decoder = Decoder(predictor, choose_decoder_threads(predictor, decoder_threads))
        self._reuse_logits = bool(reuse_logits)
        self._embedding = ImageEmbedding(predictor, pixels, embedded=embedded)
        self._answer = Answer.empty(height, width)
        self._prompt_key: tuple[Any, ...] | None = None
        self._last: ShownPrompt | None = None
        self.used_mask_input = False
        points_list = check_points(points, width, height)
        labels_list = labels_for(points_list, labels)  # refused before anything is shown
        super().__init__(
            width=width,
            height=height,
            image=encode_image(image_for_display(pixels), image_format="png"),
            multimask=bool(multimask),
            texts=all_texts,
        )
        with self.hold_trait_notifications():
            self.box = check_box(box, width, height)
            self.points = points_list
            self.labels = labels_list
        if not self.box and not self.points:
            self._decoder.warm_up(width, height)
        self._update()

    @property
    def embedding_ms(self) -> float:
        """Milliseconds the image's embedding (``set_image``) took; 0.0 if it was reused."""
        return self._embedding.ms

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
        answer = getattr(self, "_answer", None)
        return check_selected(proposal["value"], 0 if answer is None else len(answer.masks))

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
            self.status = mismatch_line(self.texts, len(self.labels), len(self.points))
            self.answered = self.request
            return
        with self.hold_sync():
            self.error = ""
            key = self._prompt()
            if key != self._prompt_key:
                self._predict()
                self._prompt_key = key
                scores = self._answer.scores
                self._show(int(np.argmax(scores)) if len(scores) else 0)
            elif 0 <= self.selected < len(self._answer.overlays):
                self._show(self.selected)
            if self.answered != self.request:
                self.answered = self.request

    def _predict(self) -> None:
        started = time.perf_counter()
        mask_input = None
        if self._reuse_logits and self._last is not None:
            mask_input = self._last.mask_input_for(self.box, self.points, self.labels)
        self.used_mask_input = mask_input is not None
        if not self.box and not self.points:
            self._answer = Answer.empty(self.height, self.width)
            self._last = None
        else:
            self._embedding.ensure()  # someone may have given the predictor another image
            try:
                self._answer = self._decoder.predict(
                    self.box, self.points, self.labels, mask_input, self.multimask
                )
            except Exception as error:
                self.error = f"{type(error).__name__}: {error}"
                self.status = failure_line(self.texts, self.error)
                raise
            self.error = ""
        self.ms = round((time.perf_counter() - started) * 1000, 1)
        answer = self._answer
        self.candidates = (
            [
                {"overlay": o, "score": round(float(s), 3)}
                for o, s in zip(answer.overlays, answer.scores, strict=True)
            ]
            if self.multimask
            else []
        )

    def _show(self, index: int) -> None:
        """Make candidate ``index`` the shown mask (overlay, score, status)."""
        if not self._answer.overlays:
            self.selected = 0
            self.overlay = mask_overlay_png(None, self.width, self.height)
            self.score = None
            self.status = self.texts.get("empty", "")
            self._last = None
            return
        self.selected = index
        self.overlay = self._answer.overlays[index]
        score = round(float(self._answer.scores[index]), 3)
        self.score = score
        self.status = status_line(self.texts, score, self.ms, self.used_mask_input)
        self._last = ShownPrompt(
            box=list(self.box),
            points=[list(p) for p in self.points],
            labels=list(self.labels),
            logits=self._answer.logits[index],
        )

    # ------------------------------------------------------------------ reading

    @property
    def masks(self) -> npt.NDArray[np.bool_]:
        """SAM's masks for the current prompt, bool `(C, H, W)` (C is 3, 1, or 0)."""
        return self._answer.masks

    @property
    def scores(self) -> npt.NDArray[np.float32]:
        """SAM's predicted IoU of every mask in :attr:`masks`, shape `(C,)`."""
        return self._answer.scores

    @property
    def logits(self) -> npt.NDArray[np.float32]:
        """The low-resolution logits of every mask, shape `(C, h, w)`."""
        return self._answer.logits

    @property
    def mask(self) -> npt.NDArray[np.bool_] | None:
        """The shown mask, bool `(H, W)`, or ``None`` with no prompt."""
        return self.masks[self.selected] if len(self.masks) else None

    @property
    def detections(self) -> sv.Detections:
        """The shown mask as ``sv.Detections`` (one row; empty with no prompt)."""
        if not len(self.masks):
            return sv.Detections.empty()
        i = self.selected
        return prediction_to_detections(
            self.masks[i : i + 1], self.scores[i : i + 1], self.logits[i : i + 1]
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
        value = check_value(value)
        points = check_points(value.get("points"), self.width, self.height)
        labels = labels_for(points, value.get("labels"))
        box = check_box(value.get("box"), self.width, self.height)
        with self.hold_trait_notifications():  # refused whole above: no stale masks
            self.box = box
            self.points = points
            self.labels = labels

    def clear(self) -> None:
        """Remove the box and every point (the mask goes with them)."""
        self.value = {"box": [], "points": [], "labels": []}

    def __repr__(self) -> str:
        score = "None" if self.score is None else f"{self.score:.3f}"
        return (
            f"LiveSegmenter(image {self.width}x{self.height}, box={self.box}, "
            f"points={self.points}, labels={self.labels}, score={score})"
        )
