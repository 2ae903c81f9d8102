"""Where samkit's files are: the bundled data, the weights folder, the output folder.

This is the only module that works out a path from where samkit is installed. The
bundled data (the ``shapes`` checkpoint, the sample photos, the detector annotation
files) is the repository's top-level ``data/`` folder in a checkout or an editable
install, and ``samkit/data/`` inside an installed wheel; :func:`data_dir` finds either.

Example:
    >>> from samkit import locations
    >>> locations.data_file("images", "chelsea.png").name
    'chelsea.png'
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

from samkit import env

#: The package folder (``.../samkit``).
_PACKAGE_DIR = Path(str(importlib.resources.files("samkit")))

_FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def repo_root() -> Path | None:
    """The repository checkout samkit runs from, or ``None`` for an installed wheel.

    Returns:
        The folder holding ``pyproject.toml`` and ``data/`` next to the package, when
        samkit runs from a checkout (``pip install -e .`` or ``PYTHONPATH``).
    """
    root = _PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "data").is_dir():
        return root
    return None


def package_file(*parts: str) -> Path:
    """A file that ships inside the package folder itself (e.g. the widget's front end).

    Args:
        *parts: The path inside ``samkit/``, one component per argument, e.g.
            ``package_file("live", "live.js")``.

    Returns:
        Its path.

    Raises:
        FileNotFoundError: If it is missing (a broken install).
    """
    path = _PACKAGE_DIR.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"samkit's file is missing: {path}; reinstall samkit")
    return path


def data_dir() -> Path:
    """The folder of the bundled data, in a wheel or in a checkout.

    Returns:
        ``samkit/data`` inside an installed wheel, else the checkout's ``data/``.

    Raises:
        FileNotFoundError: If neither exists (a broken install).
    """
    packaged = _PACKAGE_DIR / "data"
    if packaged.is_dir():
        return packaged
    root = repo_root()
    if root is not None:
        return root / "data"
    raise FileNotFoundError(
        f"samkit's bundled data is missing: neither {packaged} nor a checkout's data/ "
        "folder exists. Reinstall samkit (pip install samkit, or pip install -e . in the "
        "repository)."
    )


def data_file(*parts: str) -> Path:
    """One bundled file, e.g. ``data_file("models", "sam_shapes.pt")``.

    Args:
        *parts: The path inside the data folder, one component per argument.

    Returns:
        The file's path.

    Raises:
        FileNotFoundError: If the file is not there, naming the path looked at.
    """
    path = data_dir().joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"samkit's bundled file is missing: {path}")
    return path


def home_dir() -> Path:
    """The notebook's HOME, where data, images and weights go.

    Returns:
        ``/content`` in Colab, else the current working directory.

    Example:
        ```python
        HOME = samkit.home_dir()
        ```
    """
    return env.COLAB_HOME if env.in_colab() else Path.cwd()


def weights_dir() -> Path:
    """The folder that checkpoints are downloaded to when none is given.

    In order: the ``SAMKIT_HOME`` environment variable when set; in Google Colab,
    ``weights/`` under the notebook's home directory (as the tutorial does); otherwise
    the per-user cache directory (``~/.cache/samkit`` on Linux).

    Returns:
        The directory (it may not exist yet).
    """
    home = env.variable("SAMKIT_HOME")
    if home:
        return Path(home).expanduser()
    if env.in_colab():
        return home_dir() / "weights"
    import pooch

    return Path(pooch.os_cache("samkit"))


def output_dir(name: str) -> Path:
    """The folder where a notebook writes its files (exported masks), created if missing.

    Notebooks never write into the repository's tracked files: the base folder is
    ``SAMKIT_OUTPUT_DIR`` when set (the tests and ``make demo`` set it), else
    ``/content/samkit_outputs`` in Colab, else ``build/outputs`` of the repository
    checkout (ignored by git), else ``samkit_outputs`` in the current folder.

    Args:
        name: The notebook's sub-folder, a plain folder name (letters, digits, ``_``,
            ``-``, ``.``).

    Returns:
        The folder ``<base>/<name>``, which exists.

    Raises:
        ValueError: If ``name`` is not a plain folder name.

    Example:
        ```python
        folder = samkit.output_dir("03_mascaras_automaticas")
        samkit.save_coco_rle(detections, folder / "masks.json")
        ```
    """
    if not isinstance(name, str) or not _FOLDER_NAME.match(name):
        raise ValueError(
            f"name must be a plain folder name (letters, digits, '_', '-', '.'), but got {name!r}"
        )
    chosen = env.variable("SAMKIT_OUTPUT_DIR")
    root = repo_root()
    if chosen:
        base = Path(chosen).expanduser()
    elif env.in_colab():
        base = env.COLAB_HOME / "samkit_outputs"
    elif root is not None:
        base = root / "build" / "outputs"
    else:
        base = Path.cwd() / "samkit_outputs"
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
