"""Files, one way: atomic writes, sha256 digests, and what a file really is.

- :func:`atomic_write` and :func:`atomic_writer`: every file samkit writes goes to a
  temporary name beside its target and is renamed when complete, so a crash, a full disk
  or Ctrl-C never leaves a half-written file under the final name.
- :func:`sha256_file`: the digest of a file, read in chunks.
- :func:`sniff`: what a file that should be a checkpoint really is, from its first bytes.

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
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_writer", "sha256_file", "sniff", "write_error"]

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
