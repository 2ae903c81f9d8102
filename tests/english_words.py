"""A word list that catches English in what a Spanish-speaking learner reads.

Common English words that are not Spanish words (nor code a notebook prints on purpose,
such as parameter names: ``point_coords`` is one token, since ``_`` joins words here).
"""

from __future__ import annotations

import re

#: English words that a Spanish text never needs.
ENGLISH_WORDS = frozenset(
    """
    the and of is are was were with without instead using used which this that these those
    from for into onto than then when where while will would should could can cannot has
    have had been being not please warning warnings error failed failure done loading
    loaded saving saved found missing falling back fallback install installed instead
    score scores mask masks image images batch batches point points box boxes model models
    true false none yes off your you it's its there their they
    """.split()
)

_WORD = re.compile(r"[A-Za-zÁÉÍÓÚÜÑáéíóúüñ_]+")


def english_words(text: str) -> list[str]:
    """The words of ``text`` that are on :data:`ENGLISH_WORDS` (case-insensitive), in order."""
    return [word for word in _WORD.findall(text) if word.lower() in ENGLISH_WORDS]
