from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

import samkit
from samkit import env, locations

# ------------------------------------------------------------------ output_dir


def test_output_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAMKIT_OUTPUT_DIR", str(tmp_path / "out"))
    folder = samkit.output_dir("03_mascaras")
    assert folder == tmp_path / "out" / "03_mascaras"
    assert folder.is_dir()


def test_output_dir_in_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # from a checkout (a pyproject.toml beside the package): build/outputs, ignored by git
    monkeypatch.delenv("SAMKIT_OUTPUT_DIR", raising=False)
    monkeypatch.setattr(locations, "repo_root", lambda: tmp_path)
    assert samkit.output_dir("x") == tmp_path / "build" / "outputs" / "x"


def test_output_dir_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # an installed package, no checkout: a folder in the current directory
    monkeypatch.delenv("SAMKIT_OUTPUT_DIR", raising=False)
    monkeypatch.setattr(locations, "repo_root", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert samkit.output_dir("x") == tmp_path / "samkit_outputs" / "x"


def test_output_dir_in_colab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SAMKIT_OUTPUT_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr(env, "COLAB_HOME", tmp_path / "content")
    assert samkit.output_dir("x") == tmp_path / "content" / "samkit_outputs" / "x"


@pytest.mark.parametrize(
    "name",
    [
        # empty
        "",
        # a path, not a name
        "a/b",
        "../up",
        # hidden
        ".hidden",
        # not a string
        None,
    ],
)
def test_output_dir_rejects(name: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAMKIT_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"name must be a plain folder name (letters, digits, '_', '-', '.'), but got {name!r}"
        ),
    ):
        samkit.output_dir(name)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ package_file


@pytest.mark.parametrize(
    "parts",
    [
        ("live", "live.js"),  # the live widget's front end, in its subpackage
        ("live", "live.css"),  # and its style sheet
        ("py.typed",),  # a file at the package's top
    ],
)
def test_package_file_finds_files_in_subpackages(parts: tuple[str, ...]) -> None:
    path = locations.package_file(*parts)
    assert path.is_file()
    assert path.parts[-len(parts) :] == parts


@pytest.mark.parametrize(
    "parts",
    [
        ("live.js",),  # the front end is no longer at the package's top
        ("live", "missing.js"),  # no such file
        ("live",),  # a folder, not a file
    ],
)
def test_package_file_refuses_what_is_not_there(parts: tuple[str, ...]) -> None:
    with pytest.raises(FileNotFoundError, match=r"samkit's file is missing: .*; reinstall samkit"):
        locations.package_file(*parts)
