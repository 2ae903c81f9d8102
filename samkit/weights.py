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
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from samkit import checks, env, files, locks
from samkit.download import Checkpoint, DownloadError, download, unwritable
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
    timeout = checks.positive_number(timeout, "timeout", unit="seconds")
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
        actual = download(url, part, checkpoint, dest, timeout=float(timeout), progress=progress)
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
    if files.sha256_file(dest) != checkpoint.sha256:
        return False
    _write_stamp(dest, checkpoint.sha256)
    return True


def _write_stamp(dest: Path, sha256: str) -> None:
    """Record that ``dest`` was verified (best effort: a read-only directory is fine)."""
    stat = dest.stat()
    stamp = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    with contextlib.suppress(OSError):
        files.atomic_write(_stamp_path(dest), json.dumps(stamp))


def _remove(path: Path) -> None:
    """Delete ``path`` if it exists."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def _locked(dest: Path, *, progress: bool) -> Iterator[None]:
    """Hold ``<dest>.lock`` for the download of ``dest``; wait while another process does."""

    def say() -> None:
        if progress:
            print(
                f"{dest.name}: another process is downloading it into {dest.parent}; "
                "waiting for it to finish",
                file=sys.stderr,
            )

    lock = contextlib.ExitStack()
    try:
        lock.enter_context(locks.locked(dest.with_name(dest.name + ".lock"), on_wait=say))
    except OSError as exc:
        raise unwritable(dest.parent, exc) from exc
    with lock:
        yield
