"""What a fine-tuning run shows while it runs: its progress bars and a line per epoch.

The tutorial's notebooks are in Spanish, so ``finetune`` shows Spanish by default;
``samkit finetune`` shows English unless asked (``--language es``). Errors are English
everywhere.

Example:
    >>> from samkit.finetune.texts import progress_text
    >>> progress_text("es", "epoch", epoch=2, epochs=10)
    'época 2/10'
    >>> progress_text("en", "epoch", epoch=2, epochs=10)
    'epoch 2/10'
"""

from __future__ import annotations

from typing import Any

#: The languages a run's progress can be shown in.
LANGUAGES: tuple[str, ...] = ("es", "en")

#: Each text a run shows, by language; ``{name}`` fields are filled in.
PROGRESS_TEXTS: dict[str, dict[str, str]] = {
    "es": {
        "embeddings": "embeddings (validación)",
        "epoch": "época {epoch}/{epochs}",
        "loss": "pérdida",
        "line": "época {epoch}: mIoU de validación con caja {box:.3f}, con punto {point:.3f}",
    },
    "en": {
        "embeddings": "embeddings (validation)",
        "epoch": "epoch {epoch}/{epochs}",
        "loss": "loss",
        "line": "epoch {epoch}: validation mIoU box {box:.3f}, point {point:.3f}",
    },
}


def check_language(language: object) -> str:
    """``language`` if it is one of ``LANGUAGES``, else a ValueError saying what is."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, but got {language!r}")
    return str(language)


def progress_text(language: str, key: str, **values: Any) -> str:
    """The text ``key`` of ``PROGRESS_TEXTS`` in ``language``, its fields filled in.

    Raises:
        ValueError: If ``language`` is not one of ``LANGUAGES``.
    """
    return PROGRESS_TEXTS[check_language(language)][key].format(**values)
