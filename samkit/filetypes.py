"""What a file that should be a checkpoint really is, told from its first bytes.

A SAM checkpoint is binary from its first byte (a zip archive or a pickle). What arrives
instead, when a link is wrong or a server refuses, is usually text: an HTML error or
login page (sometimes after a UTF-8 byte-order mark), a JSON error body, or a gzip
stream of one of them. :func:`sniff` names these, so an error message can say what the
file is rather than what loading it would have done.
"""

from __future__ import annotations

import codecs

__all__ = ["sniff"]

#: The UTF-8 byte-order mark some servers and editors put before text.
UTF8_BOM = b"\xef\xbb\xbf"

#: Bytes that never occur in HTML, XML or JSON text: C0 controls but tab, LF, FF, CR.
_BINARY_BYTES = frozenset(set(range(32)) - {9, 10, 12, 13})


def sniff(head: bytes) -> tuple[str, str] | None:
    r"""Name the kind of a file from its first bytes, when it is not a checkpoint.

    Args:
        head: The file's first bytes (512 are enough).

    Returns:
        ``(kind, start)``: ``kind`` is ``"HTML"``, ``"JSON"``, ``"gzip"`` or ``"text"``,
        and ``start`` the first characters of the text (empty for gzip) for a message;
        ``None`` for binary data, which a checkpoint is.

    Example:
        ```pycon
        >>> from samkit.filetypes import sniff
        >>> sniff(b'{"error": "AccessDenied"}')
        ('JSON', '{"error": "AccessDenied"}')
        >>> sniff(b"PK\x03\x04...") is None
        True

        ```
    """
    if head.startswith(b"\x1f\x8b"):
        return ("gzip", "")
    text = head.removeprefix(UTF8_BOM).lstrip()[:512]
    if not text or any(byte in _BINARY_BYTES for byte in text):
        return None
    try:
        # Incremental, so that a character cut at the end of ``head`` is no error.
        decoded = codecs.getincrementaldecoder("utf-8")().decode(text, final=False)
    except UnicodeDecodeError:
        return None
    start = " ".join(decoded.split())[:60]
    if decoded.startswith("<"):
        return ("HTML", start)
    if decoded.startswith(("{", "[")):
        return ("JSON", start)
    return ("text", start)
