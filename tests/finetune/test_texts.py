from __future__ import annotations

import string

import pytest

from samkit.finetune.texts import LANGUAGES, PROGRESS_TEXTS, check_language, progress_text


def test_every_language_has_every_text_with_the_same_fields() -> None:
    assert set(PROGRESS_TEXTS) == set(LANGUAGES)

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    english = PROGRESS_TEXTS["en"]
    for language in LANGUAGES:
        texts = PROGRESS_TEXTS[language]
        assert set(texts) == set(english)
        assert all(fields(texts[key]) == fields(english[key]) for key in english)


def test_the_line_of_an_epoch_in_spanish_and_english() -> None:
    line = progress_text("es", "line", epoch=3, box=0.81234, point=0.7)
    assert line == "época 3: mIoU de validación con caja 0.812, con punto 0.700"
    assert progress_text("en", "line", epoch=3, box=0.81234, point=0.7) == (
        "epoch 3: validation mIoU box 0.812, point 0.700"
    )


@pytest.mark.parametrize("bad", ["fr", "", None, "ES"])
def test_an_unknown_language_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=f"language must be one of es, en, but got {bad!r}"):
        check_language(bad)
