"""What the widget says to a learner (``samkit/live/texts.py``): Spanish, every word.

The API's own error text (``LiveSegmenter.error``, exceptions) stays English; what the
widget shows (the controls, the help line, the status line under the image) does not.
"""

from __future__ import annotations

import re

import pytest

import samkit
from samkit.live import DEFAULT_TEXTS, LIVE_JS, LiveSegmenter
from samkit.live.texts import failure_line, mismatch_line, status_line, widget_texts

from .support import CountingPredictor

#: English words a learner must not read in the widget (the status line used to say
#: "score 0.947 · 44 ms · mask_input").
ENGLISH = frozenset(
    {
        "box", "boxes", "candidate", "candidates", "clear", "click", "delete", "draw",
        "empty", "entries", "error", "exclude", "failed", "give", "image", "include",
        "input", "label", "labels", "loading", "mask", "masks", "point", "points",
        "refined", "score", "select", "the", "to",
    }
)  # fmt: skip


def english_words(text: str) -> list[str]:
    """The words of ``text`` (split at anything not a letter, ``_`` too) that are English."""
    return sorted(set(re.findall(r"[a-z]+", text.lower())) & ENGLISH)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("", []),  # nothing to say
        ("score 0.947 · 44 ms · mask_input", ["input", "mask", "score"]),  # the old status
        ("puntaje 0.947 · 44 ms · máscara previa", []),  # the new one
        ("Loading…", ["loading"]),  # a word alone, in capitals
    ],
)
def test_the_word_check_finds_english(text: str, found: list[str]) -> None:
    assert english_words(text) == found


@pytest.mark.parametrize("key", sorted(DEFAULT_TEXTS))
def test_every_default_text_is_spanish(key: str) -> None:
    text = re.sub(r"\{(labels|points|reason)\}", "", DEFAULT_TEXTS[key])  # filled in later
    assert text.strip()
    assert english_words(text) == [], DEFAULT_TEXTS[key]


def test_status_lines_say_puntaje_and_mascara_previa() -> None:
    assert status_line(DEFAULT_TEXTS, 0.9468, 43.7, refined=False) == "puntaje 0.947 · 44 ms"
    assert status_line(DEFAULT_TEXTS, 0.9468, 43.7, refined=True) == (
        "puntaje 0.947 · 44 ms · máscara previa"
    )
    assert mismatch_line(DEFAULT_TEXTS, 0, 2) == (
        "hay 0 etiquetas para 2 puntos: falta una etiqueta por punto (1 incluir, 0 excluir)"
    )
    assert failure_line(DEFAULT_TEXTS, "RuntimeError: boom") == (
        "SAM no pudo responder: RuntimeError: boom"
    )


def test_texts_can_be_replaced() -> None:
    texts = widget_texts({"score": "score", "refined": "refined"})
    assert status_line(texts, 0.5, 3.0, refined=True) == "score 0.500 · 3 ms · refined"
    assert texts["clear"] == DEFAULT_TEXTS["clear"]
    # a replacement with braces of its own is shown as it is, never raises
    assert mismatch_line({"mismatch": "{x} {labels}/{points}"}, 1, 2) == "{x} 1/2"


@pytest.mark.slow
def test_everything_the_widget_shows_is_spanish(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image)
    # no prompt yet; the texts with their placeholders left out (filled in when shown)
    shown = [live.status, *(re.sub(r"\{\w+\}", "", text) for text in live.texts.values())]
    live.set_state({"box": [470.0, 140.0, 600.0, 268.0], "request": 1})
    shown.append(live.status)  # a mask and its puntaje
    live.set_state({"points": [[540.0, 210.0]], "labels": [1], "request": 2})
    assert live.used_mask_input
    shown.append(live.status)  # refined with the previous logits
    live.points = [[540.0, 210.0], [100.0, 100.0]]
    shown.append(live.status)  # points and labels out of step
    assert live.error.startswith("labels has 1 entries for 2 points")  # the API's English
    found = {text: english_words(text) for text in shown if english_words(text)}
    assert found == {}
    assert "puntaje" in shown[-3] and "máscara previa" in shown[-2] and "etiquetas" in shown[-1]


@pytest.mark.slow
def test_a_failed_prediction_is_told_in_spanish(
    live_predictor: CountingPredictor, coffee: samkit.Sample
) -> None:
    live = LiveSegmenter(live_predictor, coffee.image, box=coffee.default_box)
    live_predictor.fail = RuntimeError("out of memory")
    with pytest.raises(RuntimeError, match="out of memory"):
        live.set_state({"box": [470.0, 140.0, 600.0, 268.0], "request": 1})
    assert live.error == "RuntimeError: out of memory"
    assert live.status == "SAM no pudo responder: RuntimeError: out of memory"


def test_the_front_end_shows_no_english_of_its_own() -> None:
    # every word on the page comes from the model ("texts", "status"); the script itself
    # writes only symbols and numbers (what is inside ${...} is code, not text)
    written = re.findall(r"(?:textContent|alt|title)\s*=\s*([\"'`])(.*?)\1", LIVE_JS)
    assert written, "the check found no text written by live.js"
    texts = [re.sub(r"\$\{[^}]*\}", "", text) for _, text in written]
    assert [text for text in texts if english_words(text)] == []
    # and every text it reads from the model has a Spanish default
    read = set(re.findall(r"(?:words|texts\([^)]*\))\.(\w+)", LIVE_JS))
    assert read == {"candidates", "clear", "help", "image"}
    assert read <= set(DEFAULT_TEXTS)
