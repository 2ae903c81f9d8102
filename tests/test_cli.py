from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_server import LocalServer, dead_url, payload

import samkit
from samkit import env, locations
from samkit.cli import main
from samkit.model import MODEL_TYPES
from samkit.weights import Checkpoint

FILENAME = MODEL_TYPES["vit_b"].checkpoint.filename  # type: ignore[union-attr]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def mirror(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> tuple[LocalServer, bytes, str]:
    """A generated file served as vit_b, registered with its own sha256 and size."""
    data = payload(1 << 20)
    sha256 = hashlib.sha256(data).hexdigest()
    checkpoint = Checkpoint(FILENAME, sha256, len(data))
    spec = dataclasses.replace(MODEL_TYPES["vit_b"], checkpoint=checkpoint)
    monkeypatch.setitem(MODEL_TYPES, "vit_b", spec)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("SAMKIT_WEIGHTS_URL", server.url + "/mirror")
    server.serve("/mirror/" + FILENAME, data)
    return server, data, sha256


@pytest.mark.parametrize(
    ("extra", "progress"),
    [
        ([], True),  # the default: a progress bar on stderr
        (["--no-progress"], False),  # quiet
    ],
)
def test_download_prints_progress_and_verification(
    mirror: tuple[LocalServer, bytes, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    progress: bool,
) -> None:
    _, data, sha256 = mirror
    dest = tmp_path / "weights"
    assert main(["download", "vit_b", "--dest", str(dest), *extra]) == 0
    out, err = capsys.readouterr()
    assert out == f"verified sha256 {sha256[:8]}… -> {dest / FILENAME}\n"
    assert (dest / FILENAME).read_bytes() == data
    if progress:
        assert f"{FILENAME}: 100%" in err
    else:
        assert err == ""


def test_download_defaults_to_samkit_home(
    mirror: tuple[LocalServer, bytes, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path / "home"))
    assert main(["download", "vit_b", "--no-progress"]) == 0
    assert capsys.readouterr().out.endswith(f"-> {tmp_path / 'home' / FILENAME}\n")


def test_download_shapes_points_at_the_bundled_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bundled = tmp_path / "models" / "sam_shapes.pt"
    bundled.parent.mkdir()
    bundled.write_bytes(b"weights")
    monkeypatch.setattr(locations, "data_dir", lambda: tmp_path)
    assert main(["download", "shapes"]) == 0
    assert capsys.readouterr() == (
        f"bundled or given checkpoint (no download needed) -> {bundled}\n",
        "",
    )


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        # an unknown model type: the valid ones are listed
        (
            "ok",
            ["download", "vit_x"],
            "model_type must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got 'vit_x'",
        ),
        # the mirror answers 404
        (
            "404",
            ["download", "vit_b", "--dest", "{tmp}"],
            "Download of {url} failed: the server answered HTTP 404 Not Found. To place the "
            "file by hand, download {url} on a machine that can reach it and copy it to "
            "{tmp}/" + FILENAME,
        ),
        # nothing listens: offline
        ("dead", ["download", "vit_b", "--dest", "{tmp}"], "Could not connect to {url} ("),
        # the mirror serves another file
        ("mismatch", ["download", "vit_b", "--dest", "{tmp}"], "Checksum mismatch for {url}"),
        # a file where the directory should be
        (
            "ok",
            ["download", "vit_b", "--dest", "{tmp}/FILE"],
            "dest_dir must be a directory, but {tmp}/FILE is a file",
        ),
    ],
)
def test_errors_exit_1_with_the_message_and_no_traceback(
    mirror: tuple[LocalServer, bytes, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    args: list[str],
    message: str,
) -> None:
    server, data, _ = mirror
    (tmp_path / "FILE").write_text("not a directory")
    base = server.url + "/mirror/"
    if case == "dead":
        base = dead_url()
        monkeypatch.setenv("SAMKIT_WEIGHTS_URL", base)
    elif case == "404":
        server.serve("/mirror/" + FILENAME, data, "404")
    elif case == "mismatch":
        server.serve("/mirror/" + FILENAME, b"\1" + data[1:])
    url = base + FILENAME
    given = [arg.format(tmp=tmp_path) for arg in args]
    assert main([*given, "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("samkit: error: " + message.format(tmp=tmp_path, url=url))
    assert "Traceback" not in err
    assert not (tmp_path / FILENAME).exists()


#: The model types ``samkit env`` lists, and its line on SAM 2.1 and SAM 3.
HF_TYPES = "sam2.1_tiny, sam2.1_small, sam2.1_base_plus, sam2.1_large, sam3"
CHOICES = f"vit_h, vit_l, vit_b, shapes, {HF_TYPES}"
HF_LINE = (
    f"SAM 2.1 and SAM 3 ({HF_TYPES}): transformers {importlib.metadata.version('transformers')}, "
    "weights small (samkit.hf.load_hf)"
)


def test_env_prints_report_and_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", "shapes")
    monkeypatch.setenv("SAMKIT_DEVICE", "cpu")
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path))
    monkeypatch.setenv("SAMKIT_HF_WEIGHTS", "small")
    assert main(["env"]) == 0
    assert capsys.readouterr() == (
        f"{env.gpu_report()}\n"
        f"default model type: shapes (choices: {CHOICES})\n"
        f"{HF_LINE}\n"
        "default device: cpu (change it with SAMKIT_DEVICE=cpu)\n"
        f"weights directory: {tmp_path}\n",
        "",
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # an unknown model in the environment
        (
            "SAMKIT_MODEL",
            "vit_x",
            "SAMKIT_MODEL must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got 'vit_x'",
        ),
        # a device this machine does not have
        ("SAMKIT_DEVICE", "gpu", "SAMKIT_DEVICE must be 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ],
)
def test_env_with_a_bad_variable_exits_1(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", "shapes")
    monkeypatch.setenv(variable, value)
    assert main(["env"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"samkit: error: {message}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),  # no command at all
        (["download"], "the following arguments are required: MODEL"),  # no model
        (["fetch"], "invalid choice: 'fetch'"),  # an unknown command
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_env_runs(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "samkit"
    variables = {**os.environ, "SAMKIT_MODEL": "shapes", "SAMKIT_DEVICE": "cpu"}
    variables["SAMKIT_HF_WEIGHTS"] = "small"
    variables["SAMKIT_HOME"] = str(tmp_path)
    result = subprocess.run(
        [str(script), "env"],
        capture_output=True,
        text=True,
        env=variables,
        timeout=300,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(env.gpu_report().splitlines()[0] + "\n")
    assert result.stdout.endswith(
        f"default model type: shapes (choices: {CHOICES})\n"
        f"{HF_LINE}\n"
        "default device: cpu (change it with SAMKIT_DEVICE=cpu)\n"
        f"weights directory: {tmp_path}\n"
    )


# ------------------------------------------------------------------ Ctrl-C, python -m, --version

_CHILD = """
import signal
import sys
import dataclasses
from samkit import model, weights
from samkit.cli import main

# A child of a background job starts with SIGINT ignored; a user's Ctrl-C is not.
signal.signal(signal.SIGINT, signal.default_int_handler)
filename, sha256, size, dest = sys.argv[1:]
checkpoint = weights.Checkpoint(filename, sha256, int(size))
model.MODEL_TYPES["vit_b"] = dataclasses.replace(model.MODEL_TYPES["vit_b"], checkpoint=checkpoint)
# Outlast the server's stall: on a loaded machine the default 10 s read timeout could end
# the download (exit 1) before the test's Ctrl-C arrives.
model.download_checkpoint.__kwdefaults__["timeout"] = 120.0
sys.exit(main(["download", "vit_b", "--dest", dest, "--no-progress"]))
"""


@pytest.mark.slow
def test_ctrl_c_during_download_keeps_the_part_and_exits_130(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(3 << 20)
    sha256 = hashlib.sha256(data).hexdigest()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("SAMKIT_WEIGHTS_URL", server.url + "/mirror")
    # Half the file, then nothing for a minute: the user presses Ctrl-C meanwhile.
    server.serve("/mirror/" + FILENAME, data, "stall", delay_s=60)
    dest = tmp_path / "weights"
    part = dest / (FILENAME + ".part")
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), FILENAME, sha256, str(len(data)), str(dest)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 240
    while not (part.is_file() and part.stat().st_size >= 1 << 20):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the download did not start"
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out, err) == (
        130,
        "",
        "samkit: interrupted; run it again to resume\n",
    )
    kept = part.read_bytes()
    assert len(kept) >= 1 << 20
    assert kept == data[: len(kept)]
    assert sorted(p.name for p in dest.iterdir()) == [part.name]  # no lock, no checkpoint

    # Run it again: it resumes from the part.
    checkpoint = Checkpoint(FILENAME, sha256, len(data))
    spec = dataclasses.replace(MODEL_TYPES["vit_b"], checkpoint=checkpoint)
    monkeypatch.setitem(MODEL_TYPES, "vit_b", spec)
    server.serve("/mirror/" + FILENAME, data, "ok")
    assert main(["download", "vit_b", "--dest", str(dest), "--no-progress"]) == 0
    assert (dest / FILENAME).read_bytes() == data
    assert [hit.range for hit in server.hits] == [None, f"bytes={len(kept)}-"]


def test_ctrl_c_in_env_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(env, "gpu_report", interrupted)
    assert main(["env"]) == 130
    assert capsys.readouterr() == ("", "samkit: interrupted\n")


@pytest.mark.slow
def test_python_dash_m_samkit_works_like_the_command(tmp_path: Path) -> None:
    variables = {**os.environ, "SAMKIT_MODEL": "shapes", "SAMKIT_DEVICE": "cpu"}
    variables["SAMKIT_HOME"] = str(tmp_path)
    runs = {
        how: subprocess.run(
            [*command, "download", "shapes"],
            capture_output=True,
            text=True,
            env=variables,
            timeout=300,
            check=False,
        )
        for how, command in {
            "module": [sys.executable, "-m", "samkit"],
            "script": [str(Path(sys.executable).parent / "samkit")],
        }.items()
    }
    module, script = runs["module"], runs["script"]
    assert (module.returncode, module.stderr) == (0, "")
    assert (
        module.stdout == "bundled or given checkpoint (no download needed) -> "
        f"{locations.data_file('models', 'sam_shapes.pt')}\n"
    )
    assert (module.returncode, module.stdout, module.stderr) == (
        script.returncode,
        script.stdout,
        script.stderr,
    )
    usage = subprocess.run(
        [sys.executable, "-m", "samkit"], capture_output=True, text=True, timeout=300, check=False
    )
    assert usage.returncode == 2
    assert usage.stderr.startswith("usage: samkit ")


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    # One source: pyproject.toml takes the version from samkit/version.py.
    root = Path(__file__).parent.parent
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^dynamic = \["version"\]$', pyproject, flags=re.MULTILINE)
    assert re.search(r'^path = "samkit/version.py"$', pyproject, flags=re.MULTILINE)
    assert not re.search(r"^version = ", pyproject, flags=re.MULTILINE)
    found = re.search(
        r'^__version__ = "([^"]+)"$',
        (root / "samkit" / "version.py").read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    assert found is not None
    version = found.group(1)
    assert samkit.__version__ == version
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr() == (f"samkit {version}\n", "")
