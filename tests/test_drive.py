from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from colab_support import install_fake_colab

from samkit import drive


@pytest.fixture
def fake_drive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Pretend to be in Colab with a Drive that mounts under tmp_path; record the mounts."""
    mounts: list[str] = []
    install_fake_colab(monkeypatch, "drive", mount=mounts.append)
    monkeypatch.setattr(drive, "DRIVE_MOUNT", tmp_path / "drive")
    monkeypatch.delenv("SAMKIT_HOME", raising=False)
    return mounts


def test_off_does_nothing(fake_drive: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert drive.use_drive(False) is None
    assert fake_drive == []
    assert "SAMKIT_HOME" not in os.environ
    assert capsys.readouterr().out == ""


def test_on_in_colab_mounts_and_points_samkit_home_at_drive(
    fake_drive: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = drive.use_drive(True)
    expected = tmp_path / "drive" / "MyDrive" / "samkit" / "weights"
    assert folder == expected and expected.is_dir()
    assert fake_drive == [str(tmp_path / "drive")]
    assert os.environ["SAMKIT_HOME"] == str(expected)
    # the download folder follows it
    from samkit import locations

    assert locations.weights_dir() == expected
    assert "una sola vez" in capsys.readouterr().out


def test_on_outside_colab_changes_nothing_and_says_where_the_weights_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path))
    assert drive.use_drive(True) is None
    assert os.environ["SAMKIT_HOME"] == str(tmp_path)
    out = capsys.readouterr().out
    assert out.startswith("PESOS_EN_DRIVE es solo para Colab") and str(tmp_path) in out


@pytest.mark.parametrize(("enabled", "folder"), [("yes", "samkit"), (1, "samkit")])
def test_enabled_must_be_a_bool(enabled: object, folder: str) -> None:
    with pytest.raises(ValueError, match=r"^enabled must be True or False, but got"):
        drive.use_drive(enabled, folder)  # type: ignore[arg-type]


@pytest.mark.parametrize("folder", ["", "a/b", "..", 3])
def test_folder_must_be_a_folder_name(folder: object) -> None:
    with pytest.raises(ValueError, match=r"^folder must be a plain folder name"):
        drive.drive_weights_dir(folder)  # type: ignore[arg-type]
