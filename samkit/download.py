"""One checkpoint's HTTP download: resumed where it can be, refused when it is no checkpoint.

:func:`download` streams a URL into a ``.part`` file (continuing it with a ``Range``
request), hashes what arrives, and stops at once when the server sends an HTML page, a
JSON error, gzip data or other text instead of a checkpoint, when the disk is full, or
when the connection stops; every message says what to do about it.
:mod:`samkit.weights` decides when to download, and verifies and keeps the result.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from tqdm.auto import tqdm

from samkit import files

__all__ = ["Checkpoint", "DownloadError", "download", "download_deadline", "unwritable"]

#: Bytes read from the connection at a time: small enough that what arrived before a
#: stall or Ctrl-C is on disk, to resume from.
READ_BYTES = 1 << 20

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


def unwritable(directory: Path, exc: OSError) -> DownloadError:
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


def _manual_hint(url: str, dest: Path) -> str:
    """Tell the user how to place the checkpoint by hand."""
    return (
        f"To place the file by hand, download {url} on a machine that can reach it and "
        f"copy it to {dest} (samkit verifies its sha256 on first use). A mirror also "
        "works: set SAMKIT_WEIGHTS_URL to the directory URL that holds the file."
    )


def open_url(url: str, offset: int, dest: Path, timeout: float) -> http.client.HTTPResponse:
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


def download(
    url: str, part: Path, checkpoint: Checkpoint, dest: Path, *, timeout: float, progress: bool
) -> str:
    """Download ``url`` into ``part`` (resuming it when possible); return its sha256.

    The hash returned is that of the bytes on disk, read back after they were synced,
    so a file that another writer or a failing disk changed is never taken as verified.
    """
    offset = part.stat().st_size if part.is_file() else 0
    if checkpoint.size is not None and offset >= checkpoint.size:
        if offset == checkpoint.size and files.sha256_file(part) == checkpoint.sha256:
            return checkpoint.sha256
        part.unlink(missing_ok=True)
        offset = 0
    try:
        response = open_url(url, offset, dest, timeout)
    except urllib.error.HTTPError:
        # 416 Range Not Satisfiable: the partial file is of no use; start again.
        part.unlink(missing_ok=True)
        offset = 0
        response = open_url(url, offset, dest, timeout)
    with response:
        offset, total = _check_response(response, offset, checkpoint, url=url, dest=dest)
        _check_free_space(part, (total or 0) - offset)
        digest = hashlib.sha256()
        if offset:
            files.sha256_file(part, digest)
        try:
            fh = part.open("ab" if offset else "wb")
        except OSError as exc:
            raise unwritable(part.parent, exc) from exc
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
            deadline_s = download_deadline(expected)
            received = _copy(
                response, fh, digest, bar, url=url, part=part, dest=dest, deadline_s=deadline_s
            )
            fh.flush()
            os.fsync(fh.fileno())
    return _verified_on_disk(url, part, offset + received, total, digest.hexdigest())


def _verified_on_disk(url: str, part: Path, size: int, total: int | None, received: str) -> str:
    """The sha256 of ``part`` read back, checked against what was received; else an error."""
    if total is not None and size < total:
        raise DownloadError(
            f"Download of {url} stopped early: the connection closed after "
            f"{size:,} of {total:,} bytes. Run the download again to resume "
            f"it from {part}."
        )
    on_disk = files.sha256_file(part)
    if on_disk != received:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"Download of {url}: the file on disk is not what was received (sha256 "
            f"{on_disk} on disk, {received} received): another program wrote to "
            f"{part} at the same time, or the disk is failing. The file was removed; run "
            "the download again."
        )
    return on_disk


def _check_response(
    response: http.client.HTTPResponse, offset: int, checkpoint: Checkpoint, *, url: str, dest: Path
) -> tuple[int, int | None]:
    """Refuse a web page or JSON by its headers; return where it resumes and the total size."""
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
    return offset, offset + length if length is not None else checkpoint.size


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
        sniffed = files.sniff(chunk) if first and fh.tell() == 0 else None
        if sniffed is not None:
            fh.close()
            part.unlink(missing_ok=True)
            kind, start = sniffed
            if kind == "HTML":
                raise DownloadError(
                    _html_message(url, dest, "the file is text that starts with '<'")
                )
            if kind == "gzip":
                what, evidence = "a gzip file", "it starts with gzip's magic bytes 1f 8b"
            else:
                what = "a JSON file" if kind == "JSON" else "a text file"
                evidence = f"it starts with {start!r}"
            raise DownloadError(_not_checkpoint_message(url, dest, what, evidence))
        first = False
        try:
            files.write_bytes(fh, chunk)
        except OSError as exc:
            fh.close()
            part.unlink(missing_ok=True)
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


def download_deadline(expected: int) -> float:
    """The seconds a download of ``expected`` bytes may take in all (see the constants)."""
    return DOWNLOAD_GRACE_S + max(expected, 0) / DOWNLOAD_MIN_BYTES_PER_S


def _read_some(response: BinaryIO, deadline: float, at_least: int) -> bytes:
    """What has arrived (``read1``), read on until ``at_least`` bytes, the end or ``deadline``."""
    read = getattr(response, "read1", response.read)
    chunk: bytes = read(READ_BYTES)
    while chunk and len(chunk) < at_least and time.monotonic() < deadline:
        more = read(READ_BYTES)
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
