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

#: What is no prose: a file path or URL (anything with a slash in it), a quoted key of a
#: JSON file a notebook prints (``"score":``, part of the file's format), and a name
#: between Spanish quotation marks (``«NASA Great Images»``, a collection's name).
_NOT_PROSE = re.compile(r"\S*/\S*|\"\w+\":|«[^»]*»")

#: A word; a hyphen joins its parts (``scikit-image`` is a name, not the word "image").
_WORD = re.compile(r"[A-Za-zÁÉÍÓÚÜÑáéíóúüñ_]+(?:-[A-Za-zÁÉÍÓÚÜÑáéíóúüñ_]+)*")


def english_words(text: str) -> list[str]:
    """The words of ``text`` on :data:`ENGLISH_WORDS` (case-insensitive), in order.

    Paths, JSON keys and names in «» are left out: ``/tmp/pytest-of-root/...`` is where a file went,
    and ``"score":`` is a file format's key, not prose.
    """
    prose = _NOT_PROSE.sub(" ", text)
    return [word for word in _WORD.findall(prose) if word.lower() in ENGLISH_WORDS]
