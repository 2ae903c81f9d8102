"""Finding the images of ``samkit segment``'s inputs, and naming each one.

A file gives itself (``file_name`` its base name); a folder gives every visible file
under it (``file_name`` relative to the folder); a glob (``photos/**/*.jpg``) gives the
files it matches (``file_name`` relative to the glob's folder part). Files that are not
images are found too, and fail when read: they are reported, never hidden (a broken
link, a named pipe or a device among them too, under its own name).
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from samkit.boxes import ImageBoxes
from samkit.segment.spec import Failure, ImageItem, SegmentUsageError

#: A file found, with its ``file_name`` (``/``-separated, relative to its input).
Found = tuple[Path, str]


def discover(
    inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]
) -> tuple[list[Found], list[Failure]]:
    """Find the image files of the inputs, each with its relative ``file_name``.

    Args:
        inputs: Files, folders and globs.
        out_dir: The output folder, which must not be inside an input folder.

    Returns:
        The files found, each once, with their ``file_name``, in input order; and the
        inputs that gave nothing (an empty folder, a glob that matches nothing).

    Raises:
        SegmentUsageError: If there are no inputs, an input does not exist, the output
            folder is inside an input folder, or two files would get the same
            ``file_name``.

    Example:
        ```pycon
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> (folder / "cam1").mkdir()
        >>> _ = (folder / "cam1" / "0001.png").write_bytes(b"")
        >>> found, failures = discover([folder], folder.parent / "out")
        >>> [name for _, name in found], failures
        (['cam1/0001.png'], [])

        ```
    """
    if isinstance(inputs, str | os.PathLike) or not isinstance(inputs, Sequence):
        raise SegmentUsageError(
            f"inputs must be a list of files, folders or globs, but got {type(inputs).__name__}"
        )
    if not inputs:
        raise SegmentUsageError("no inputs: give at least one file, folder or glob")
    out = Path(out_dir).resolve()
    found: list[Found] = []
    failures: list[Failure] = []
    for given in inputs:
        if not isinstance(given, str | os.PathLike) or not str(given).strip():
            raise SegmentUsageError(f"an input must be a path or a glob, but got {given!r}")
        files, failure = find_input(str(given), out, out_dir)
        found += files
        if failure is not None:
            failures.append(failure)
    return unique_files(found), failures


def find_input(
    text: str, out: Path, out_dir: str | os.PathLike[str]
) -> tuple[list[Found], Failure | None]:
    """The files of one input (a file, a folder or a glob), or why it gave none.

    Args:
        text: The input as given.
        out: The output folder, resolved.
        out_dir: The output folder as given (for messages).

    Returns:
        The files found with their ``file_name``, and a failure when there are none.

    Raises:
        SegmentUsageError: If the input does not exist, or ``out`` is inside it.
    """
    path = Path(text).expanduser()
    if path.is_dir():
        base = path.resolve()
        if out == base or base in out.parents:
            raise SegmentUsageError(
                f"--out {out_dir} is inside the input folder {text}: choose an output "
                "folder outside the inputs"
            )
        files = [(f, posix_name(f.relative_to(path))) for f in walk_visible(path, out)]
        return files, None if files else Failure(text, "empty folder: no files found")
    if path.is_file() or path.is_symlink() or path.exists():
        # a file, a broken link or a special file: it is an input, and fails when read
        return [(path, path.name)], None
    if glob.has_magic(text):
        root = glob_root(text)
        if root.is_dir() and (out == root.resolve() or root.resolve() in out.parents):
            raise SegmentUsageError(
                f"--out {out_dir} is inside {root}, where the glob {text} searches: "
                "choose an output folder outside the inputs"
            )
        matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
        files = [
            (m, posix_name(m.relative_to(root)) if m.is_relative_to(root) else m.name)
            for m in matches
            if not m.is_dir() and out not in m.resolve().parents
        ]
        return files, None if files else Failure(text, "the glob matches no files")
    raise SegmentUsageError(f"input not found: {text} (no such file or folder)")


def glob_root(pattern: str) -> Path:
    """The folder part of a glob, before its first wildcard (``photos/**/*.jpg``: ``photos``)."""
    prefix = pattern[: min(pattern.find(c) % (len(pattern) + 1) for c in "*?[")]
    return Path(prefix) if prefix.endswith(("/", os.sep)) else Path(prefix).parent


def walk_visible(folder: Path, out_dir: Path) -> list[Path]:
    """Every visible file under ``folder``, sorted; hidden ones and ``out_dir`` left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if Path(root).resolve() == out_dir:
            dirs[:] = []
            continue
        found += [Path(root) / name for name in sorted(files) if not name.startswith(".")]
    return found


def posix_name(path: Path) -> str:
    """A relative path as a ``/``-separated ``file_name``, on every system."""
    return str(PurePosixPath(*path.parts))


def unique_files(found: Sequence[Found]) -> list[Found]:
    """Each file once (the first time it is found), checking that names do not clash.

    Raises:
        SegmentUsageError: If two different files would get the same ``file_name``.
    """
    unique: dict[Path, Found] = {}
    by_name: dict[str, Path] = {}
    for path, file_name in found:
        resolved = path.resolve()
        if resolved in unique:
            continue
        if file_name in by_name:
            raise SegmentUsageError(
                f"two inputs give the same file_name {file_name!r}: {by_name[file_name]} and "
                f"{path}; give their common parent folder instead, so that each keeps its "
                "own relative path"
            )
        unique[resolved] = (path, file_name)
        by_name[file_name] = path
    return list(unique.values())


def item_key(file_name: str) -> str:
    """The name of an image's result file in the store: a hash of its ``file_name``."""
    return hashlib.sha256(file_name.encode("utf-8")).hexdigest()[:24]


def output_stems(file_names: Sequence[str]) -> dict[str, str]:
    """Each file's folder under ``masks/`` and preview name.

    That is its path without the suffix, or with it when two files differ only there.
    """
    stems = {name: str(PurePosixPath(name).with_suffix("")) for name in file_names}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    return {name: stem if counts[stem] == 1 else name for name, stem in stems.items()}


def make_items(
    found: Sequence[Found], assigned: Mapping[str, ImageBoxes | str]
) -> tuple[list[ImageItem], list[Failure]]:
    """The job's images, each with its key, output stem and box prompts.

    Args:
        found: The files and their ``file_name``, as :func:`discover` gives them.
        assigned: Per ``file_name``, its boxes, or why the box file has none for it
            (empty when prompting with automatic masks).

    Returns:
        The items, in the order found, and a failure per file that has no boxes.
    """
    stems = output_stems([name for _, name in found])
    items: list[ImageItem] = []
    failures: list[Failure] = []
    for path, file_name in found:
        given = assigned.get(file_name)
        if isinstance(given, str):
            failures.append(Failure(str(path), given))
            continue
        items.append(
            ImageItem(
                path=os.path.abspath(path),  # a link keeps its own name
                file_name=file_name,
                key=item_key(file_name),
                output_stem=stems[file_name],
                boxes=None if given is None else given.to_json(),
            )
        )
    return items, failures
