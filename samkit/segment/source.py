"""An image's source file: opened safely, and known by its content.

A folder of images may hold anything: a named pipe (FIFO), a device, a socket, a broken
symbolic link. Opening a FIFO for reading waits for a writer for ever, so a file is
opened without blocking and read only when it is a regular file; anything else is
refused by its kind, under the name it was found by (a broken link is named, not its
missing target).

Results are keyed by content: an image's record holds the sha256 of the file it was
made from, with the file's size, modification time, change time and inode. A rerun
reuses a result when those four are unchanged (nothing can change a file's content
without changing its change time, which no program can set: ``cp -p``, ``rsync -a`` and
``touch -d`` restore the modification time, not the change time); otherwise it hashes
the file again and reuses the result only if the content is the same.

The checkpoint is known by its sha256 too: a different checkpoint copied over the same
path is another model. Its hash is taken once and cached (``OUT/.samkit/checkpoint.json``)
by the same stamp; an official checkpoint that samkit downloads is known by the sha256 on
record, which the download is verified against.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from samkit import env
from samkit.files import atomic_write, json_text, sha256_file
from samkit.model import default_model_type, download_checkpoint, model_spec
from samkit.segment.spec import STORE_DIR

#: The cache of the checkpoint's sha256, under ``OUT/.samkit/``.
CHECKPOINT_CACHE = "checkpoint.json"

#: The largest image file samkit segment reads (a bigger one fails with its reason).
MAX_SOURCE_BYTES = 1 << 30

#: Bytes read at a time.
CHUNK_BYTES = 4 << 20

#: The names of the kinds of file that are not regular files.
SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


class SourceError(ValueError):
    """A source file cannot be read as an image file; the message says why."""


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words (``"a named pipe (FIFO)"``)."""
    return next((name for test, name in SPECIAL_KINDS if test(mode)), "not a regular file")


def open_regular(path: str) -> int:
    """Open ``path`` for reading without blocking; refuse anything but a regular file.

    Returns:
        The open file descriptor (blocking again, for reading).

    Raises:
        SourceError: If ``path`` is a broken symbolic link or not a regular file.
        OSError: If it cannot be opened (missing, no permission).
    """
    if os.path.islink(path) and not os.path.exists(path):
        raise SourceError(f"a broken symbolic link: its target {os.readlink(path)} does not exist")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(path, flags)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise SourceError(
            f"{file_kind(mode)}, not an image file: samkit segment reads regular files only"
        )
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return fd


def stamp_of(stat_result: os.stat_result) -> dict[str, int]:
    """The size, modification time, change time and inode of a file (no content)."""
    return {
        "size": stat_result.st_size,
        "mtime_ns": stat_result.st_mtime_ns,
        "ctime_ns": stat_result.st_ctime_ns,
        "inode": stat_result.st_ino,
    }


def source_stamp(path: str) -> dict[str, Any]:
    """A source file's stamp and the sha256 of its content, read once, safely.

    Args:
        path: The file.

    Returns:
        ``{"size", "mtime_ns", "ctime_ns", "inode", "sha256"}``.

    Raises:
        SourceError: If it is not a regular file, or larger than :data:`MAX_SOURCE_BYTES`.
        OSError: If it cannot be read.
    """
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as file:
        before = os.fstat(file.fileno())
        if before.st_size > MAX_SOURCE_BYTES:
            raise SourceError(
                f"the file is {before.st_size:,} bytes, more than the {MAX_SOURCE_BYTES:,} "
                "bytes samkit segment reads as one image"
            )
        digest = hashlib.sha256()
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return {**stamp_of(before), "sha256": digest.hexdigest()}


def same_source(path: str, recorded: object) -> bool:
    """Whether the file at ``path`` is the one a record was made from (by content).

    Args:
        path: The file as it is now.
        recorded: The record's ``source`` (as :func:`source_stamp` gave it).

    Returns:
        ``True`` when the stamp is unchanged, or the content's sha256 is the same.
    """
    if not isinstance(recorded, dict) or not isinstance(recorded.get("sha256"), str):
        return False
    try:
        now = os.stat(path)
        if not stat.S_ISREG(now.st_mode):
            return False
        if all(recorded.get(key) == value for key, value in stamp_of(now).items()):
            return True
        if now.st_size != recorded.get("size"):
            return False
        return bool(source_stamp(path)["sha256"] == recorded["sha256"])
    except (OSError, ValueError):
        return False


def checkpoint_sha256(
    model_type: str, checkpoint: str | None, out: Path
) -> tuple[str, dict[str, Any] | None]:
    """The sha256 of the checkpoint a job loads, taken once per file and cached.

    Args:
        model_type: The model type.
        checkpoint: The checkpoint file given, or ``None`` for ``load_sam``'s default
            (``SAMKIT_CHECKPOINT``, the bundled file, or the official download).
        out: The output folder, whose ``.samkit/checkpoint.json`` caches the hash.

    Returns:
        The hex sha256, and the cache entry to write once the store is opened (``None``
        when the cache already holds it, or the sha256 is the official record's).

    Raises:
        OSError, ValueError: If the checkpoint file cannot be read.
    """
    if checkpoint is None:
        record = model_spec(model_type).checkpoint
        from_env = env.variable("SAMKIT_CHECKPOINT") is not None
        if record is not None and not (from_env and model_type == default_model_type()):
            return record.sha256, None  # downloaded and verified against this sha256
        path = download_checkpoint(model_type)  # SAMKIT_CHECKPOINT or the bundled file
    else:
        path = Path(checkpoint)
    resolved = path.resolve()
    stamp = {"path": str(resolved), **stamp_of(os.stat(resolved))}
    try:
        cached = json.loads((out / STORE_DIR / CHECKPOINT_CACHE).read_text(encoding="utf-8"))
        if cached["stamp"] == stamp and isinstance(cached["sha256"], str):
            return cached["sha256"], None
    except (OSError, ValueError, RecursionError, KeyError, TypeError):
        pass
    digest = sha256_file(resolved)
    return digest, {"stamp": stamp, "sha256": digest}


def hub_identity(model_type: str, checkpoint: str | None) -> str:
    """What a transformers model (SAM 2.1, SAM 3) is known by, in place of a sha256.

    Args:
        model_type: A model type with a Hub repository.
        checkpoint: A ``save_pretrained`` folder, or ``None`` for ``SAMKIT_HF_WEIGHTS``
            (the Hub's weights unless it says ``random`` or ``small``).

    Returns:
        ``"<repo>:<weights>"``, or the sha256 of the folder's files (names and contents).
    """
    if checkpoint is None:
        return f"{model_spec(model_type).hub}:{env.variable('SAMKIT_HF_WEIGHTS') or 'hub'}"
    digest = hashlib.sha256()
    folder = Path(checkpoint)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder).as_posix()}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def write_checkpoint_cache(out: Path, entry: dict[str, Any] | None) -> None:
    """Keep a checkpoint's sha256 for the next run (the store exists)."""
    if entry is not None:
        atomic_write(out / STORE_DIR / CHECKPOINT_CACHE, json_text(entry, indent=1))
