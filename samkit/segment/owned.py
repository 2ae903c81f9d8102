"""The output folder is the user's: samkit knows which files in it are its own.

samkit segment writes into ``--out`` only what it can name afterwards:

- ``.samkit/``, the store (its ``settings.json`` says so);
- each image's mask PNGs, preview, YOLO label file and cut-outs, listed in the image's record
  (``.samkit/images/<key>.json``, key ``"files"``), and, while they are being written,
  in a journal entry ``.samkit/writing/<key>.json`` written before them and removed
  after the record (so a run killed midway still knows what it wrote);
- ``annotations.json`` and ``data.yaml``, whose sha256 is recorded in
  ``.samkit/written.json`` before they are written (the last two of each, so a run
  killed between the two writes still knows it).

A folder that holds any other file (the operating system's ``.DS_Store`` and the like
excepted) is refused, naming the files, and ``--overwrite`` deletes only samkit's own.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from samkit.files import atomic_write, json_text
from samkit.segment.spec import ANNOTATIONS_FILE, DATA_YAML, STORE_DIR, SegmentUsageError

#: The journal of the files an image is writing, under ``.samkit/``.
JOURNAL_DIR = "writing"

#: The record of the ``annotations.json`` and ``data.yaml`` samkit wrote, under ``.samkit/``.
WRITTEN_FILE = "written.json"

#: The files a run writes at the top of ``--out``, known by their sha256.
RUN_FILES = (ANNOTATIONS_FILE, DATA_YAML)

#: Files the operating system puts in any folder it shows; never the user's work.
SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})

#: The folders samkit writes images' files into.
OUTPUT_FOLDERS = ("masks", "previews", "labels", "cutouts")

#: Temporary names samkit's atomic writes use (``.name.random.tmp``, ``.mask.new-random``).
TEMPORARY = re.compile(r"\..+\.tmp|\.mask\.(new|old)-[^/]+")

#: How many foreign files a refusal names.
NAMED = 5


def is_store(out: Path) -> bool:
    """Whether ``out/.samkit`` is a store samkit segment wrote (its settings say so)."""
    try:
        settings = json.loads((out / STORE_DIR / "settings.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    kind = settings.get("format") if isinstance(settings, dict) else None
    return isinstance(kind, str) and kind.startswith("samkit-segment-")


def listed_files(folder: Path) -> set[str]:
    """The ``"files"`` the JSON entries of a store folder list (records or journal)."""
    listed: set[str] = set()
    if not folder.is_dir():
        return listed
    for entry in folder.glob("*.json"):
        try:
            content = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        files = content.get("files") if isinstance(content, dict) else None
        if isinstance(files, list):
            listed |= {name for name in files if isinstance(name, str)}
    return listed


def written_digests(out: Path, name: str = ANNOTATIONS_FILE) -> list[str]:
    """The sha256 of the ``name`` files samkit wrote last (newest first)."""
    try:
        content = json.loads((out / STORE_DIR / WRITTEN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(content, dict):
        return []
    by_name = content.get("sha256")
    digests = by_name.get(name) if isinstance(by_name, dict) else None
    if digests is None and name == ANNOTATIONS_FILE:  # a store written before data.yaml
        digests = content.get("annotations_sha256")
    return [d for d in digests if isinstance(d, str)] if isinstance(digests, list) else []


def own_files(out: Path) -> set[str]:
    """Every file in ``out`` (outside ``.samkit/``) samkit wrote, relative, ``/``-separated."""
    if not is_store(out):
        return set()
    own = listed_files(out / STORE_DIR / "images") | listed_files(out / STORE_DIR / JOURNAL_DIR)
    for name in RUN_FILES:
        target = out / name
        if target.is_file() and file_digest(target) in written_digests(out, name):
            own.add(name)
    return own


def file_digest(path: Path) -> str:
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_temporary(relative: str) -> bool:
    """Whether a path is a temporary name of samkit's writes, where samkit writes."""
    parts = relative.split("/")
    if len(parts) == 1:
        return parts[0].endswith(".tmp") and any(parts[0].startswith(f".{n}.") for n in RUN_FILES)
    return parts[0] in OUTPUT_FOLDERS and bool(TEMPORARY.fullmatch(parts[-1]))


def foreign_files(out: Path) -> list[str]:
    """The files in ``out`` samkit did not write (relative paths, sorted).

    Args:
        out: The output folder (it may not exist: then there are none).

    Returns:
        The files (and links) that are neither samkit's own, nor its temporary files,
        nor files the operating system adds to folders; ``.samkit/`` counts as a whole
        when it is a samkit store, and as a foreign folder when it is not.
    """
    if not out.is_dir():
        return []
    own = own_files(out)
    store = is_store(out)
    foreign: list[str] = []
    for root, dirs, files in os.walk(out):
        base = Path(root).relative_to(out)
        prefix = "" if base == Path(".") else f"{base.as_posix()}/"
        if not prefix and store and STORE_DIR in dirs:
            dirs.remove(STORE_DIR)
        for name in sorted(dirs):
            if is_temporary(prefix + name):
                dirs.remove(name)  # a PNG set being swapped in: samkit's own
            elif os.path.islink(os.path.join(root, name)):
                foreign.append(prefix + name)
        dirs.sort()
        for name in sorted(files):
            relative = prefix + name
            if relative in own or name in SYSTEM_FILES or is_temporary(relative):
                continue
            foreign.append(relative)
    return sorted(foreign)


def check_folder(out: Path, out_dir: str | os.PathLike[str]) -> None:
    """Refuse an output folder that holds files samkit did not write.

    Raises:
        SegmentUsageError: Naming the first files, and saying what to do.
    """
    foreign = foreign_files(out)
    if not foreign:
        return
    named = ", ".join(foreign[:NAMED]) + (
        f" and {len(foreign) - NAMED} more" if len(foreign) > NAMED else ""
    )
    hint = (
        f" ({ANNOTATIONS_FILE} was not written by samkit segment here, so it is not replaced)"
        if ANNOTATIONS_FILE in foreign
        else ""
    )
    raise SegmentUsageError(
        f"--out {out_dir} holds {len(foreign)} file(s) samkit did not write: {named}{hint}; "
        "samkit segment writes into an empty folder or one it wrote itself, and --overwrite "
        "deletes only samkit's own files: move those files away, or choose another --out"
    )


def remove_own(out: Path) -> None:
    """Delete samkit's own files in ``out`` (the store last), and folders left empty."""
    own = own_files(out)
    folders: set[Path] = set()
    for relative in sorted(own):
        target = out / relative
        if not relative.endswith("/") and (target.is_file() or target.is_symlink()):
            target.unlink()
        if relative.endswith("/"):
            folders.add(target)
        folders |= {p for p in target.parents if out in p.parents}
    for relative in temporary_files(out):
        target = out / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    if is_store(out):
        shutil.rmtree(out / STORE_DIR)


def temporary_files(out: Path) -> list[str]:
    """Samkit's temporary files and PNG sets left in ``out`` by a killed run."""
    found = [p.name for name in RUN_FILES for p in out.glob(f".{name}.*.tmp")]
    for folder in OUTPUT_FOLDERS:
        for root, dirs, files in os.walk(out / folder):
            relative = Path(root).relative_to(out).as_posix()
            found += [f"{relative}/{n}" for n in [*dirs, *files] if TEMPORARY.fullmatch(n)]
            dirs[:] = [d for d in dirs if not TEMPORARY.fullmatch(d)]
    return found


def begin_files(out: Path, key: str, files: Iterable[str]) -> Path:
    """Journal the files an image is about to write (before writing them)."""
    folder = out / STORE_DIR / JOURNAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return atomic_write(folder / f"{key}.json", json_text({"files": sorted(files)}))


def end_files(out: Path, key: str) -> None:
    """Drop an image's journal entry (its record, written before, lists its files)."""
    (out / STORE_DIR / JOURNAL_DIR / f"{key}.json").unlink(missing_ok=True)


def record_written(out: Path, name: str, text: str) -> None:
    """Record the sha256 of ``name`` (one of :data:`RUN_FILES`) about to be written.

    The last two of each file are kept: the one on disk, and the one being written.
    """
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    kept: dict[str, Any] = {n: written_digests(out, n) for n in RUN_FILES}
    kept[name] = [digest, *[d for d in kept[name] if d != digest][:1]]
    content = {"sha256": {n: digests for n, digests in kept.items() if digests}}
    atomic_write(out / STORE_DIR / WRITTEN_FILE, json_text(content, indent=1))
