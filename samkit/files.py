"""Files, one way: atomic writes, sha256 digests, and what a file really is.

- :func:`atomic_write` and :func:`atomic_writer`: every file samkit writes goes to a
  temporary name beside its target and is renamed when complete, so a crash, a full disk
  or Ctrl-C never leaves a half-written file under the final name.
- :func:`sha256_file`: the digest of a file, read in chunks.
- :func:`sniff`: what a file that should be a checkpoint really is, from its first bytes.
- :func:`json_text` and :func:`read_json`: JSON out strictly (a NaN is written as
  ``null``, never as the bare ``NaN`` a strict parser refuses) and in with clear
  errors (UTF-8, or UTF-16/UTF-32 with a byte-order mark; deep nesting refused).

A SAM checkpoint is binary from its first byte (a zip archive or a pickle). What arrives
instead, when a link is wrong or a server refuses, is usually text: an HTML error or
login page (sometimes after a UTF-8 byte-order mark), a JSON error body, or a gzip
stream of one of them. :func:`sniff` names these, so an error message can say what the
file is rather than what loading it would have done.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_writer",
    "decode_text",
    "json_text",
    "read_json",
    "sha256_file",
    "sniff",
    "write_error",
]

#: Bytes read at a time when hashing a file.
CHUNK_BYTES = 4 << 20

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
        >>> from samkit.files import sniff
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
    if text.startswith(b"<"):  # a page in any 8-bit encoding: checkpoints never start so
        return ("HTML", " ".join(text.decode("utf-8", "replace").split())[:60])
    try:
        # Incremental, so that a character cut at the end of ``head`` is no error.
        decoded = codecs.getincrementaldecoder("utf-8")().decode(text, final=False)
    except UnicodeDecodeError:
        return None
    start = " ".join(decoded.split())[:60]
    if decoded.startswith(("{", "[")):
        return ("JSON", start)
    return ("text", start)


def sha256_file(path: str | os.PathLike[str], digest: hashlib._Hash | None = None) -> str:
    """The hex sha256 of a file, read in chunks (into ``digest`` when one is given).

    Args:
        path: The file.
        digest: A running ``hashlib.sha256()`` to continue (for a resumed download), or
            ``None`` for a new one.

    Returns:
        The 64-character hex digest.
    """
    digest = digest if digest is not None else hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def umask_mode() -> int:
    """The mode a new file gets here: ``0o666`` less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_error(error: OSError, path: Path) -> OSError:
    """Say what stopped a write, in words that point the right way; nothing was changed."""
    if error.errno == errno.ENOSPC:
        what = "the disk is full"
    elif error.errno == errno.EROFS:
        what = "the file system is read-only"
    elif error.errno in (errno.EACCES, errno.EPERM):
        what = "permission denied"
    else:
        what = error.strerror or str(error)
    named = type(error)(f"cannot write {path}: {what}; nothing was changed there")
    named.errno = error.errno
    return named


def write_bytes(file: IO[bytes], data: bytes) -> None:
    """Write one file's bytes (a function of its own so that tests can fill the disk)."""
    file.write(data)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` on success.

    The file gets the permissions the umask gives a new file (``mkstemp``'s own are
    ``0600``), and its bytes reach the disk (``fsync``) before the rename. On any error,
    or Ctrl-C, the temporary file is removed and ``path`` is left as it was.

    Args:
        path: The final file. Its folder must exist.

    Yields:
        A binary file object to write into.

    Raises:
        FileNotFoundError: The folder does not exist.
        OSError: The write failed; the message says why (disk full, read-only, permission).
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"folder not found: {target.parent}")
    try:
        handle, temporary = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
    except OSError as error:
        raise write_error(error, target) from error
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, umask_mode())
        os.replace(temporary, target)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise write_error(error, target) from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`).

    Args:
        path: The final file. Its folder must exist.
        data: The bytes, or text (written as UTF-8).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Example:
        ```pycon
        >>> import tempfile, pathlib
        >>> from samkit.files import atomic_write
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> atomic_write(folder / "a.txt", "hola").read_text()
        'hola'

        ```
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_writer(path) as file:
        write_bytes(file, raw)
    return Path(path)


#: Byte-order marks of the encodings :func:`decode_text` reads (UTF-32 before UTF-16,
#: whose mark begins UTF-32 little-endian's).
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, where: str) -> str:
    """The text of a file: UTF-8, or UTF-8/UTF-16/UTF-32 with a byte-order mark.

    Editors on Windows save text as UTF-16 with a byte-order mark; that is read. Text
    in any other encoding is refused, never guessed.

    Args:
        data: The file's bytes.
        where: The file, for the message.

    Returns:
        The text, without its byte-order mark.

    Raises:
        ValueError: If the bytes are not text in one of those encodings.

    Example:
        ```pycon
        >>> decode_text("{}".encode("utf-16"), "a.json")
        '{}'

        ```
    """
    encoding = next((name for mark, name in BYTE_ORDER_MARKS if data.startswith(mark)), "utf-8")
    expected = f"{where} must be UTF-8 text (or UTF-16/UTF-32 with a byte-order mark), but"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{expected} byte {data[error.start]:#04x} at position {error.start} is not {encoding}"
        ) from None
    if "\x00" in text:
        raise ValueError(
            f"{expected} it holds NUL bytes (UTF-16 without a byte-order mark, or not text)"
        )
    return text


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file (see :func:`decode_text` for the encodings read).

    Args:
        path: The file.

    Returns:
        What the file holds.

    Raises:
        OSError: If the file cannot be read.
        ValueError: If it is not text, not JSON, or nested too deeply to parse.
    """
    file = Path(path)
    text = decode_text(file.read_bytes(), str(file))
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{file} is not a JSON file: {error}") from None
    except RecursionError:
        raise ValueError(
            f"{file} is nested too deeply to be read (arrays or objects inside one another "
            "about a thousand levels deep): it is not a file samkit reads"
        ) from None


def finite_or_null(content: Any) -> Any:
    """``content`` with every NaN or infinite float replaced by ``None`` (JSON ``null``)."""
    if isinstance(content, float):
        return content if math.isfinite(content) else None
    if isinstance(content, dict):
        return {key: finite_or_null(value) for key, value in content.items()}
    if isinstance(content, list | tuple):
        return [finite_or_null(value) for value in content]
    return content


def json_text(content: Any, indent: int | None = None) -> str:
    """JSON that every strict parser reads: a NaN or infinity is written as ``null``.

    Args:
        content: Dicts, lists, strings, numbers, bools and ``None``.
        indent: As for ``json.dumps``.

    Returns:
        The JSON text.

    Example:
        ```pycon
        >>> json_text({"score": float("nan"), "area": 3})
        '{"score": null, "area": 3}'

        ```
    """
    return json.dumps(finite_or_null(content), indent=indent, allow_nan=False)
