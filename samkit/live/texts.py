"""Everything the live widget says to a learner, in Spanish (the tutorial's language).

The controls' words, the help line and the status line under the image are built here
from :data:`DEFAULT_TEXTS`; a caller may replace any of them with ``texts=``. The API's
own error messages (``LiveSegmenter.error``, the exceptions) stay English.
"""

from __future__ import annotations

from collections.abc import Mapping

#: What the widget shows (the tutorial speaks Spanish); override with ``texts=``.
#: In ``mismatch`` and ``failed``, ``{labels}``, ``{points}`` and ``{reason}`` are filled in.
DEFAULT_TEXTS: dict[str, str] = {
    "clear": "Borrar todo",
    "help": (
        "Arrastrá: caja · clic: incluir · Shift+clic o clic derecho: excluir · "
        "arrastrá un punto o la caja para moverlos · clic sobre un punto o la × de la "
        "caja para borrarlos"
    ),
    "candidates": "Candidatas (hacé clic para elegir):",
    "empty": "Dibujá una caja o hacé clic sobre un objeto.",
    "image": "imagen para segmentar",
    "score": "puntaje",
    "refined": "máscara previa",
    "mismatch": (
        "hay {labels} etiquetas para {points} puntos: falta una etiqueta por punto "
        "(1 incluir, 0 excluir)"
    ),
    "failed": "SAM no pudo responder: {reason}",
}


def widget_texts(texts: Mapping[str, str] | None) -> dict[str, str]:
    """:data:`DEFAULT_TEXTS` with the caller's replacements.

    Args:
        texts: Replacements for some of the keys of :data:`DEFAULT_TEXTS`, or ``None``.

    Returns:
        Every key, with the replacements applied.

    Raises:
        ValueError: If ``texts`` has a key that is not one of :data:`DEFAULT_TEXTS`.
    """
    unknown = set(texts or {}) - set(DEFAULT_TEXTS)
    if unknown:
        raise ValueError(
            f"texts has unknown keys {sorted(unknown)}; the keys are {sorted(DEFAULT_TEXTS)}"
        )
    return {**DEFAULT_TEXTS, **(texts or {})}


def status_line(texts: Mapping[str, str], score: float, ms: float, refined: bool) -> str:
    """The line under the image for a shown mask.

    Args:
        texts: The widget's texts (:func:`widget_texts`).
        score: SAM's predicted IoU of the shown mask.
        ms: Milliseconds the prompt took in the kernel.
        refined: Whether SAM got its previous logits as ``mask_input``.

    Returns:
        For example ``"puntaje 0.947 · 44 ms · máscara previa"``.

    Example:
        ```pycon
        >>> from samkit.live.texts import DEFAULT_TEXTS, status_line
        >>> status_line(DEFAULT_TEXTS, 0.9468, 43.7, refined=True)
        'puntaje 0.947 · 44 ms · máscara previa'

        ```
    """
    line = f"{texts['score']} {score:.3f} · {ms:.0f} ms"
    return f"{line} · {texts['refined']}" if refined else line


def mismatch_line(texts: Mapping[str, str], labels: int, points: int) -> str:
    """The line shown while points and labels do not agree in number.

    Args:
        texts: The widget's texts (:func:`widget_texts`).
        labels: How many labels there are.
        points: How many points there are.

    Returns:
        The ``mismatch`` text with the two counts.
    """
    return texts["mismatch"].replace("{labels}", str(labels)).replace("{points}", str(points))


def failure_line(texts: Mapping[str, str], reason: str) -> str:
    """The line shown when SAM's ``predict`` raised.

    Args:
        texts: The widget's texts (:func:`widget_texts`).
        reason: The exception as ``"TypeName: message"``.

    Returns:
        The ``failed`` text with the reason.
    """
    return texts["failed"].replace("{reason}", reason)
