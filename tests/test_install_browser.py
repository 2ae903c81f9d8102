"""tools/install_browser.sh, which make setup runs, and the browser test's message when
the browser is missing. apt-get, sudo and id are stand-ins on PATH here: nothing is
installed, and the real /usr/bin/chromium is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import browser_support
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "install_browser.sh"
PACKAGES = "chromium fonts-liberation fonts-dejavu-core"
COMMAND = f"sudo apt-get update && sudo apt-get install -y --no-install-recommends {PACKAGES}"

#: Stand-ins, each one logs how it was called to $LOG.
FAKE_APT = """#!/bin/bash
echo "apt-get $* DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-}" >> "$LOG"
if [ "$1" = install ] && [ "$APT_FAILS" = 1 ]; then exit 100; fi
if [ "$1" = install ] && [ "$APT_MAKES_CHROMIUM" = 1 ]; then
    printf '#!/bin/sh\\n' > "$CHROMIUM"; chmod +x "$CHROMIUM"
fi
"""
FAKE_SUDO = {
    "works": '#!/bin/bash\necho "sudo $*" >> "$LOG"\n[ "$1" = -n ] && shift\nexec "$@"\n',
    "asks": '#!/bin/bash\necho "sudo $*" >> "$LOG"\nexit 1\n',
}


def _run(
    tmp_path: Path,
    *,
    uid: int = 1000,
    sudo: str | None = None,
    apt: bool = True,
    apt_makes_chromium: bool = True,
    apt_fails: bool = False,
    chromium_there: bool = False,
    args: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess[str], list[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("env", "true", "chmod"):
        found = shutil.which(tool)
        assert found is not None, f"{tool} is needed to run the stand-ins"
        (bin_dir / tool).symlink_to(found)
    tools = {"id": f"#!/bin/bash\necho {uid}\n"}
    if apt:
        tools["apt-get"] = FAKE_APT
    if sudo is not None:
        tools["sudo"] = FAKE_SUDO[sudo]
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    chromium = tmp_path / "chromium"
    if chromium_there:
        chromium.write_text("#!/bin/sh\n")
        chromium.chmod(0o755)
    log = tmp_path / "log"
    log.touch()
    env = {
        "PATH": str(bin_dir),
        "LOG": str(log),
        "CHROMIUM": str(chromium),
        "APT_MAKES_CHROMIUM": "1" if apt_makes_chromium else "0",
        "APT_FAILS": "1" if apt_fails else "0",
    }
    bash = shutil.which("bash")
    assert bash is not None
    result = subprocess.run(
        [bash, str(SCRIPT), "--chromium", str(chromium), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, log.read_text().splitlines(), chromium


UPDATE = "apt-get update -q DEBIAN_FRONTEND="
INSTALL = f"apt-get install -y -q --no-install-recommends {PACKAGES} DEBIAN_FRONTEND=noninteractive"
SUDO_INSTALL = (
    f"sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
    f"{PACKAGES}"
)


@pytest.mark.parametrize(
    ("options", "log", "says"),
    [
        ({"chromium_there": True, "uid": 0}, [], "is there"),
        ({"uid": 0}, [UPDATE, INSTALL], "installed"),
        (
            {"sudo": "works"},
            ["sudo -n true", "sudo -n apt-get update -q", UPDATE, SUDO_INSTALL, INSTALL],
            "installed",
        ),
    ],
    ids=["already-there", "root", "sudo-without-password"],
)
def test_installs_when_it_can(
    tmp_path: Path, options: dict[str, object], log: list[str], says: str
) -> None:
    result, calls, chromium = _run(tmp_path, **options)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    assert says in result.stdout
    assert calls == log
    assert os.access(chromium, os.X_OK)


@pytest.mark.parametrize(
    ("options", "log", "why"),
    [
        ({"sudo": "asks"}, ["sudo -n true"], "sudo asks for a password"),
        ({}, [], "sudo asks for a password"),  # no sudo at all
        ({"apt": False, "uid": 0}, [], "no apt-get here"),
    ],
    ids=["sudo-asks-for-a-password", "no-sudo", "no-apt-get"],
)
def test_prints_the_command_when_it_cannot(
    tmp_path: Path, options: dict[str, object], log: list[str], why: str
) -> None:
    result, calls, chromium = _run(tmp_path, **options)  # type: ignore[arg-type]
    # setup goes on; the browser test is what fails
    assert result.returncode == 0, result.stderr
    assert f"{chromium} is missing" in result.stdout and why in result.stdout
    assert f"\n    {COMMAND}\n" in result.stdout
    assert calls == log
    assert not chromium.exists()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"apt_makes_chromium": False}, "is still missing"),
        ({"apt_fails": True}, "apt-get could not install " + PACKAGES),
    ],
    ids=["no-browser-after-apt", "apt-fails"],
)
def test_fails_when_apt_does_not_give_the_browser(
    tmp_path: Path, options: dict[str, bool], says: str
) -> None:
    result, calls, chromium = _run(tmp_path, uid=0, **options)
    assert result.returncode == 1
    assert says in result.stderr
    assert calls == [UPDATE, INSTALL]
    assert not chromium.exists()


@pytest.mark.parametrize("args", [("--bogus",), ("--chromium-path", "x")])
def test_unknown_argument_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    result, calls, _ = _run(tmp_path, uid=0, args=args)
    assert result.returncode == 2
    assert f"unknown argument '{args[0]}'" in result.stderr
    assert calls == []


def test_prints_the_command_alone() -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--command"], capture_output=True, text=True, check=True
    )
    assert result.stdout == COMMAND + "\n"


def test_browser_test_fails_with_the_same_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-chromium"
    monkeypatch.setattr(browser_support, "CHROMIUM", missing)
    monkeypatch.setattr(browser_support, "BUILD", tmp_path / "build")
    with pytest.raises(browser_support.BrowserTestError) as caught:
        with browser_support.lab_page(tmp_path, tmp_path / "home", {}, timeout=5):
            pytest.fail("lab_page opened without a browser")
    assert caught.value.reason == "chromium-missing"
    assert str(caught.value).startswith(f"{missing} is missing")
    assert f"\n    {COMMAND}\n" in str(caught.value)
    # the note beside the failure screenshot says the same
    note = (tmp_path / "build" / "browser-failure-chromium-missing.txt").read_text()
    assert COMMAND in note


def test_setup_and_test_run_the_script() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "tools/install_browser.sh" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("make test") and "apt-get" not in ci
