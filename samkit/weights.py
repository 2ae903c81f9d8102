"""Downloading SAM checkpoints: a download you can trust.

``fetch_checkpoint`` fetches a checkpoint once, verifies its sha256 and keeps it in a
per-user directory; later calls return the verified file at once, without hashing it
again. The download goes to ``<name>.part`` beside the final file, resumes from there
when the server allows it, and becomes the real file only once its hash matches.

Example (it downloads 375 MB, so the doctests, which run offline, skip it):
    >>> import samkit
    >>> path = samkit.download_checkpoint("vit_b")  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'sam_vit_b_01ec64.pth'
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from tqdm.auto import tqdm

from samkit import env, files
from samkit.locations import weights_dir as default_weights_dir

__all__ = [
    "DEFAULT_WEIGHTS_URL",
    "Checkpoint",
    "ChecksumError",
    "DownloadError",
    "checkpoint_url",
    "default_weights_dir",
    "fetch_checkpoint",
]

#: Where Meta publishes the official checkpoints.
DEFAULT_WEIGHTS_URL = "https://dl.fbaipublicfiles.com/segment_anything/"

#: Seconds to wait for a connection, and for each block of data, before giving up.
DEFAULT_TIMEOUT_S = 10.0

_CHUNK_BYTES = 1 << 20

#: The overall deadline of a download: this many seconds, plus the expected bytes at
#: :data:`DOWNLOAD_MIN_BYTES_PER_S` (a server that trickles a byte every few seconds
#: never trips the per-read timeout, so the whole download has a deadline too).
DOWNLOAD_GRACE_S = 120.0

#: The slowest average rate a download may have (64 KiB/s: vit_h within 11 hours).
DOWNLOAD_MIN_BYTES_PER_S = 64 * 1024
_USER_AGENT = "samkit (+https://github.com/samkit-tutorial/samkit)"


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable SAM checkpoint (the model registry says which type it holds).

    Attributes:
        filename: The file name, the same on Meta's server, on a mirror and on disk.
        sha256: The lowercase hex sha256 of the file.
        size: The file size in bytes, or ``None`` where it is not on record.
    """

    filename: str
    sha256: str
    size: int | None


class DownloadError(OSError):
    """A checkpoint could not be downloaded; the message says what to do about it."""


class ChecksumError(DownloadError):
    """A downloaded file does not have the sha256 on record (the file was removed)."""


def checkpoint_url(checkpoint: Checkpoint) -> str:
    """Return the URL a checkpoint is downloaded from.

    The base is ``SAMKIT_WEIGHTS_URL`` when set (a mirror, or a server inside an
    air-gapped site), else Meta's ``DEFAULT_WEIGHTS_URL``; the file name is always the
    registry's.

    Args:
        checkpoint: The checkpoint's record (``samkit.model.MODEL_TYPES[...].checkpoint``).

    Returns:
        The full URL of the checkpoint file.

    Raises:
        ValueError: If ``SAMKIT_WEIGHTS_URL`` is not an http(s) URL.
    """
    base = env.variable("SAMKIT_WEIGHTS_URL") or DEFAULT_WEIGHTS_URL
    if not base.startswith(("http://", "https://")):
        raise ValueError(
            "SAMKIT_WEIGHTS_URL must be an http:// or https:// URL of a directory that "
            f"holds the checkpoint files, but got {base!r}"
        )
    return base.rstrip("/") + "/" + checkpoint.filename


def fetch_checkpoint(
    checkpoint: Checkpoint,
    dest_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download a SAM checkpoint (once), verify its sha256, return its path.

    A file already in ``dest_dir`` is used as it is once its sha256 matches, and a small
    ``<name>.verified.json`` stamp beside it (size, modification time, sha256) spares
    hashing it again on later calls. A download that was cut off resumes from the
    ``<name>.part`` file where the server accepts HTTP range requests.

    Args:
        checkpoint: The checkpoint's record. ``samkit.download_checkpoint`` takes a model
            type and looks it up in the model registry.
        dest_dir: Directory to keep the checkpoint in; created when missing. Defaults
            to ``default_weights_dir()``.
        progress: Show a progress bar while downloading.
        timeout: Seconds to wait for the connection and for each block of data.

    Returns:
        The path of the verified checkpoint.

    Raises:
        ValueError: If ``dest_dir``, ``timeout`` or ``SAMKIT_WEIGHTS_URL`` is not valid.
        ChecksumError: If the downloaded file does not match the sha256 on record.
        DownloadError: If the server cannot be reached, answers with an error or an
            HTML page, the transfer stops early, or the disk is full.

    Example (it downloads 375 MB, so the doctests, which run offline, skip it):
        >>> from samkit.model import MODEL_TYPES
        >>> fetch_checkpoint(MODEL_TYPES["vit_b"].checkpoint, "weights")  # doctest: +SKIP
        PosixPath('weights/sam_vit_b_01ec64.pth')
    """
    if not isinstance(checkpoint, Checkpoint):
        raise ValueError(f"checkpoint must be a Checkpoint, but got {type(checkpoint).__name__}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, but got {timeout!r}")
    directory = _prepare_dir(dest_dir)
    url = checkpoint_url(checkpoint)
    dest = directory / checkpoint.filename
    if dest.is_file() and _stamp_matches(dest, checkpoint):
        return dest
    # One download per destination at a time (two notebooks, two `samkit download`s):
    # the second waits here, then finds the verified file.
    with _locked(dest, progress=progress):
        if dest.is_file():
            if _is_verified(dest, checkpoint):
                return dest
            # A stale or broken copy (an old wget of an error page, a cut-off download):
            # fetch a good one in its place.
            _remove(_stamp_path(dest))
            dest.unlink()
        part = dest.with_name(dest.name + ".part")
        actual = _download(url, part, checkpoint, dest, timeout=float(timeout), progress=progress)
        if actual != checkpoint.sha256:
            _remove(part)
            raise ChecksumError(
                f"Checksum mismatch for {url}: expected sha256 {checkpoint.sha256}, but got "
                f"{actual}. The downloaded file was removed. Run the download again; if it "
                "fails the same way, the server (or SAMKIT_WEIGHTS_URL) is not serving the "
                "official file."
            )
        os.replace(part, dest)
        _write_stamp(dest, checkpoint.sha256)
    return dest


def _prepare_dir(dest_dir: str | os.PathLike[str] | None) -> Path:
    """Validate ``dest_dir`` (or pick the default) and create it."""
    if dest_dir is None:
        directory = default_weights_dir()
    elif isinstance(dest_dir, str | os.PathLike) and str(dest_dir).strip():
        directory = Path(dest_dir).expanduser()
    else:
        raise ValueError(f"dest_dir must be a directory path or None, but got {dest_dir!r}")
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"dest_dir must be a directory, but {directory} is a file")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"Cannot create the weights directory {directory}: {exc.strerror or exc}. "
            "Choose another one with dest_dir=... or the SAMKIT_HOME environment variable."
        ) from exc
    return directory


def _stamp_path(dest: Path) -> Path:
    """The sidecar file that records a verified checkpoint's size, mtime and sha256."""
    return dest.with_name(dest.name + ".verified.json")


def _stamp_matches(dest: Path, checkpoint: Checkpoint) -> bool:
    """Whether the stamp beside ``dest`` records this very file as ``checkpoint``."""
    stat = dest.stat()
    try:
        stamp = json.loads(_stamp_path(dest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamp = None
    return stamp == {
        "sha256": checkpoint.sha256,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }


def _is_verified(dest: Path, checkpoint: Checkpoint) -> bool:
    """Whether ``dest`` holds ``checkpoint``; hashes only when the stamp is out of date."""
    if _stamp_matches(dest, checkpoint):
        return True
    stat = dest.stat()
    if checkpoint.size is not None and stat.st_size != checkpoint.size:
        return False
    if _sha256_file(dest) != checkpoint.sha256:
        return False
    _write_stamp(dest, checkpoint.sha256)
    return True


def _write_stamp(dest: Path, sha256: str) -> None:
    """Record that ``dest`` was verified (best effort: a read-only directory is fine)."""
    stat = dest.stat()
    stamp = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    path = _stamp_path(dest)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(stamp), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        _remove(tmp)


def _sha256_file(path: Path, digest: hashlib._Hash | None = None) -> str:
    """Hash a file in chunks (into ``digest`` when given) and return the hex sha256."""
    digest = digest if digest is not None else hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _remove(path: Path) -> None:
    """Delete ``path`` if it exists."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _lock_fd(fd: int, *, blocking: bool) -> bool:
    """Take an exclusive lock on an open file; ``False`` when another process holds it.

    POSIX uses ``flock``, Windows ``msvcrt.locking``. Where the platform or file system
    has no locks (``ENOLCK``, e.g. some network file systems), no lock is taken and
    ``True`` is returned: the hash of the bytes on disk still guards the result.
    """
    if sys.platform == "win32":
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not blocking:
                    return False
                time.sleep(0.2)
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            return True
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed, not replaced)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


@contextlib.contextmanager
def _locked(dest: Path, *, progress: bool) -> Iterator[None]:
    """Hold ``<dest>.lock`` for the download of ``dest``; wait while another process does.

    The lock file is removed by its holder before it lets go (on POSIX), so nothing is
    left beside the checkpoint; a waiter that then holds a removed file tries again.
    """
    lock_path = dest.with_name(dest.name + ".lock")
    waited = False
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _unwritable(dest.parent, exc) from exc
        try:
            if not _lock_fd(fd, blocking=False):
                if progress and not waited:
                    print(
                        f"{dest.name}: another process is downloading it into "
                        f"{dest.parent}; waiting for it to finish",
                        file=sys.stderr,
                    )
                waited = True
                _lock_fd(fd, blocking=True)
            if sys.platform == "win32" or _same_file(fd, lock_path):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        if sys.platform != "win32":
            _remove(lock_path)
        os.close(fd)


def _unwritable(directory: Path, exc: OSError) -> DownloadError:
    """Say that ``directory`` cannot be written, and why (never "the disk is full")."""
    if exc.errno == errno.EROFS:
        why = "it is on a read-only file system"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        why = "permission denied"
    elif exc.errno == errno.ENOSPC:
        why = "the disk is full"
    else:
        why = exc.strerror or str(exc)
    return DownloadError(
        f"Cannot write the checkpoint into {directory}: {why}. Choose a writable "
        "directory with dest_dir=... (or the SAMKIT_HOME environment variable)."
    )


def _write_chunk(fh: IO[bytes], chunk: bytes) -> None:
    """Write one block of the download (a separate function so tests can fill the disk)."""
    fh.write(chunk)


def _manual_hint(url: str, dest: Path) -> str:
    """Tell the user how to place the checkpoint by hand."""
    return (
        f"To place the file by hand, download {url} on a machine that can reach it and "
        f"copy it to {dest} (samkit verifies its sha256 on first use). A mirror also "
        "works: set SAMKIT_WEIGHTS_URL to the directory URL that holds the file."
    )


def _open(url: str, offset: int, dest: Path, timeout: float) -> http.client.HTTPResponse:
    """Send the request (with a Range header when resuming) and return the response."""
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            raise
        raise DownloadError(
            f"Download of {url} failed: the server answered HTTP {exc.code} {exc.reason}. "
            + _manual_hint(url, dest)
        ) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DownloadError(
            f"Could not connect to {url} ({reason}). Check your internet connection. "
            + _manual_hint(url, dest)
        ) from exc
    return response


def _download(
    url: str, part: Path, checkpoint: Checkpoint, dest: Path, *, timeout: float, progress: bool
) -> str:
    """Download ``url`` into ``part`` (resuming it when possible); return its sha256.

    The hash returned is that of the bytes on disk, read back after they were synced,
    so a file that another writer or a failing disk changed is never taken as verified.
    """
    offset = part.stat().st_size if part.is_file() else 0
    if checkpoint.size is not None and offset >= checkpoint.size:
        if offset == checkpoint.size and _sha256_file(part) == checkpoint.sha256:
            return checkpoint.sha256
        _remove(part)
        offset = 0
    try:
        response = _open(url, offset, dest, timeout)
    except urllib.error.HTTPError:
        # 416 Range Not Satisfiable: the partial file is of no use; start again.
        _remove(part)
        offset = 0
        response = _open(url, offset, dest, timeout)
    with response:
        content_range = response.headers.get("Content-Range", "")
        if not (offset and response.status == 206 and content_range.startswith(f"bytes {offset}-")):
            offset = 0  # The server sent the whole file.
        if response.headers.get_content_type() == "text/html":
            raise DownloadError(_html_message(url, dest, "its Content-Type is text/html"))
        if response.headers.get_content_type() == "application/json":
            raise DownloadError(
                _not_checkpoint_message(
                    url, dest, "a JSON file", "its Content-Type is application/json"
                )
            )
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        total = offset + length if length is not None else checkpoint.size
        _check_free_space(part, (total or 0) - offset)
        digest = hashlib.sha256()
        if offset:
            _sha256_file(part, digest)
        try:
            fh = part.open("ab" if offset else "wb")
        except OSError as exc:
            raise _unwritable(part.parent, exc) from exc
        with (
            fh,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=checkpoint.filename,
                disable=not progress,
            ) as bar,
        ):
            expected = (total if total is not None else checkpoint.size or 0) - offset
            deadline_s = DOWNLOAD_GRACE_S + max(expected, 0) / DOWNLOAD_MIN_BYTES_PER_S
            received = _copy(
                response, fh, digest, bar, url=url, part=part, dest=dest, deadline_s=deadline_s
            )
            fh.flush()
            os.fsync(fh.fileno())
    if total is not None and offset + received < total:
        raise DownloadError(
            f"Download of {url} stopped early: the connection closed after "
            f"{offset + received:,} of {total:,} bytes. Run the download again to resume "
            f"it from {part}."
        )
    on_disk = _sha256_file(part)
    if on_disk != digest.hexdigest():
        _remove(part)
        raise DownloadError(
            f"Download of {url}: the file on disk is not what was received (sha256 "
            f"{on_disk} on disk, {digest.hexdigest()} received): another program wrote to "
            f"{part} at the same time, or the disk is failing. The file was removed; run "
            "the download again."
        )
    return on_disk


def _copy(
    response: BinaryIO,
    fh: IO[bytes],
    digest: hashlib._Hash,
    bar: tqdm,
    *,
    url: str,
    part: Path,
    dest: Path,
    deadline_s: float = float("inf"),
) -> int:
    """Stream the response body into ``fh``; return the number of bytes received.

    Gives up (keeping ``part`` to resume from) when the whole body takes longer than
    ``deadline_s`` seconds: each read returns what has arrived (``read1``), so even a
    server that sends a byte every few seconds is stopped on time.
    """
    received = 0
    first = True
    deadline = time.monotonic() + deadline_s
    while True:
        if time.monotonic() > deadline:
            raise _too_slow(url, part, received, deadline_s)
        try:
            chunk = _read_some(response, deadline, at_least=512 if first else 1)
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(
                f"Download of {url} stopped early after {received:,} bytes ({exc!r}). "
                f"Run the download again to resume it from {part}."
            ) from exc
        if not chunk:
            return received
        if first and fh.tell() == 0 and _looks_like_markup(chunk):
            fh.close()
            _remove(part)
            raise DownloadError(_html_message(url, dest, "the file is text that starts with '<'"))
        sniffed = files.sniff(chunk) if first and fh.tell() == 0 else None
        if sniffed is not None:
            fh.close()
            _remove(part)
            kind, start = sniffed
            if kind == "gzip":
                what, evidence = "a gzip file", "it starts with gzip's magic bytes 1f 8b"
            else:
                what = "a JSON file" if kind == "JSON" else "a text file"
                evidence = f"it starts with {start!r}"
            raise DownloadError(_not_checkpoint_message(url, dest, what, evidence))
        first = False
        try:
            _write_chunk(fh, chunk)
        except OSError as exc:
            fh.close()
            _remove(part)
            if exc.errno == errno.ENOSPC:
                raise DownloadError(
                    f"The disk is full: no space left to write {part}. The partial file was "
                    "removed. Free some space, or download to another directory with "
                    "dest_dir=... (or the SAMKIT_HOME environment variable)."
                ) from exc
            raise DownloadError(f"Could not write {part}: {exc.strerror or exc}.") from exc
        digest.update(chunk)
        bar.update(len(chunk))
        received += len(chunk)


def _read_some(response: BinaryIO, deadline: float, at_least: int) -> bytes:
    """What has arrived (``read1``), read on until ``at_least`` bytes, the end or ``deadline``."""
    read = getattr(response, "read1", response.read)
    chunk: bytes = read(_CHUNK_BYTES)
    while chunk and len(chunk) < at_least and time.monotonic() < deadline:
        more = read(_CHUNK_BYTES)
        if not more:
            break
        chunk += more
    return chunk


def _too_slow(url: str, part: Path, received: int, deadline_s: float) -> DownloadError:
    """The error of a download past its overall deadline (the partial file is kept)."""
    return DownloadError(
        f"Download of {url} is too slow: {received:,} bytes in {deadline_s:.0f} s, its "
        f"deadline for this file (at least {DOWNLOAD_MIN_BYTES_PER_S:,} bytes/s on average "
        f"after {DOWNLOAD_GRACE_S:.0f} s). Run the download again to resume it from {part}, "
        "or try another network or mirror (SAMKIT_WEIGHTS_URL)."
    )


def _check_free_space(part: Path, needed: int) -> None:
    """Fail before downloading when the disk cannot hold ``needed`` more bytes."""
    free = shutil.disk_usage(part.parent).free
    if needed > free:
        raise DownloadError(
            f"The disk is full: {part.parent} has {free:,} bytes free, but the download "
            f"needs {needed:,}. Free some space, or download to another directory with "
            "dest_dir=... (or the SAMKIT_HOME environment variable)."
        )


#: Bytes that never occur in HTML or XML text: C0 controls other than tab, LF, FF and CR.
_BINARY_BYTES = bytes(set(range(32)) - {9, 10, 12, 13})


def _looks_like_markup(head: bytes) -> bool:
    """Whether the first bytes of a download are an HTML/XML page rather than a checkpoint.

    A page starts with ``<`` (after blank space) and is text. A checkpoint is a zip
    archive or a pickle, binary from the first bytes, so a binary file that happens to
    start with ``<`` is not mistaken for a page.
    """
    text = head.removeprefix(files.UTF8_BOM).lstrip()[:512]
    return text[:1] == b"<" and not any(byte in _BINARY_BYTES for byte in text)


def _not_checkpoint_message(url: str, dest: Path, what: str, evidence: str) -> str:
    """Explain that a JSON, gzip or text file arrived where a checkpoint was expected."""
    return (
        f"{url} returned {what}, not a checkpoint ({evidence}): the link is wrong, or the "
        "server sent an error message instead of the file. Nothing was kept. "
        + _manual_hint(url, dest)
    )


def _html_message(url: str, dest: Path, evidence: str) -> str:
    """Explain that a web page arrived where a checkpoint was expected."""
    return (
        f"{url} returned an HTML page, not a checkpoint ({evidence}): the link is wrong, "
        "or the server sent an error or login page instead of the file. Nothing was kept. "
        + _manual_hint(url, dest)
    )
