from __future__ import annotations

import dataclasses
import errno
import gzip
import hashlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pooch
import pytest
from http_server import LocalServer, dead_url, payload

from samkit import download, env, files, locations, weights
from samkit.model import MODEL_TYPES, download_checkpoint
from samkit.weights import (
    DEFAULT_WEIGHTS_URL,
    Checkpoint,
    ChecksumError,
    DownloadError,
    checkpoint_url,
    default_weights_dir,
)

#: The official vit_b checkpoint's record.
VIT_B = MODEL_TYPES["vit_b"].checkpoint
assert VIT_B is not None

#: Three blocks of the downloader and a bit: enough to exercise the chunked copy.
PAYLOAD_BYTES = 3 * (1 << 20) + 12_345


@dataclass
class Mirror:
    """A local mirror serving a generated file under a registry entry's name."""

    server: LocalServer
    model_type: str
    data: bytes
    url: str
    dest_dir: Path

    @property
    def dest(self) -> Path:
        return self.dest_dir / MODEL_TYPES[self.model_type].checkpoint.filename

    @property
    def part(self) -> Path:
        return self.dest.with_name(self.dest.name + ".part")

    def requests(self) -> list[str | None]:
        """The Range header of each request for the checkpoint (None: no Range)."""
        path = "/mirror/" + MODEL_TYPES[self.model_type].checkpoint.filename
        return [hit.range for hit in self.server.hits if hit.path == path]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def make_mirror(
    server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Mirror]:
    """Serve a generated file as ``model_type`` and point the registry and URL at it."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("SAMKIT_WEIGHTS_URL", server.url + "/mirror/")

    def make(
        model_type: str = "vit_b",
        mode: str = "ok",
        served: bytes | None = None,
        size_on_record: bool = True,
        delay_s: float = 0.0,
        data: bytes | None = None,
    ) -> Mirror:
        data = payload(PAYLOAD_BYTES) if data is None else data
        entry = MODEL_TYPES[model_type].checkpoint
        assert entry is not None
        checkpoint = Checkpoint(
            filename=entry.filename,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data) if size_on_record else None,
        )
        monkeypatch.setitem(
            MODEL_TYPES,
            model_type,
            dataclasses.replace(MODEL_TYPES[model_type], checkpoint=checkpoint),
        )
        body = data if served is None else served
        url = server.serve("/mirror/" + entry.filename, body, mode, delay_s)
        return Mirror(server, model_type, data, url, tmp_path / "weights")

    return make


@pytest.fixture
def count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every file that ``weights`` hashes from disk."""
    hashed: list[Path] = []
    original = files.sha256_file

    def counting(path: Path, digest: object = None) -> str:
        hashed.append(path)
        return original(path, digest)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "sha256_file", counting)
    return hashed


def manual_hint(url: str, dest: Path) -> str:
    return re.escape(
        f"To place the file by hand, download {url} on a machine that can reach it and "
        f"copy it to {dest} (samkit verifies its sha256 on first use)."
    )


@pytest.mark.parametrize(
    ("model_type", "size_on_record"),
    [
        ("vit_b", True),  # size on record, as in the registry
        ("vit_h", True),  # the largest official model
        ("vit_l", False),  # no size on record: the Content-Length gives the bar's total
    ],
)
def test_download_verifies_and_shows_progress(
    make_mirror: Callable[..., Mirror],
    capsys: pytest.CaptureFixture[str],
    model_type: str,
    size_on_record: bool,
) -> None:
    mirror = make_mirror(model_type, size_on_record=size_on_record)
    path = download_checkpoint(model_type, dest_dir=mirror.dest_dir)
    assert path == mirror.dest
    assert path.read_bytes() == mirror.data
    assert not mirror.part.exists()
    assert path.with_name(path.name + ".verified.json").is_file()
    assert mirror.requests() == [None]
    err = capsys.readouterr().err
    assert MODEL_TYPES[model_type].checkpoint.filename in err
    assert "100%" in err


def test_download_without_progress_prints_nothing(
    make_mirror: Callable[..., Mirror], capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = make_mirror()
    download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert capsys.readouterr() == ("", "")


def test_hash_mismatch_names_both_hashes_and_removes_the_file(
    make_mirror: Callable[..., Mirror],
) -> None:
    served = payload(PAYLOAD_BYTES, seed=1)
    mirror = make_mirror(served=served)
    expected = MODEL_TYPES["vit_b"].checkpoint.sha256
    actual = hashlib.sha256(served).hexdigest()
    message = re.escape(
        f"Checksum mismatch for {mirror.url}: expected sha256 {expected}, but got {actual}. "
        "The downloaded file was removed."
    )
    with pytest.raises(ChecksumError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        ("404", "404 Not Found"),  # a wrong mirror path
        ("500", "500 Internal Server Error"),  # the server is broken
    ],
)
def test_http_error_names_status_url_and_manual_path(
    make_mirror: Callable[..., Mirror], mode: str, status: str
) -> None:
    mirror = make_mirror(mode=mode)
    message = re.escape(
        f"Download of {mirror.url} failed: the server answered HTTP {status}. "
    ) + manual_hint(mirror.url, mirror.dest)
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []


def test_dead_server_fails_fast_with_url_and_manual_path(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = make_mirror()
    base = dead_url()
    monkeypatch.setenv("SAMKIT_WEIGHTS_URL", base)
    url = base + MODEL_TYPES["vit_b"].checkpoint.filename
    message = (
        re.escape(f"Could not connect to {url} (")
        + r"[^)]*refused\)\. Check your internet connection\. "
        + manual_hint(url, mirror.dest)
    )
    start = time.monotonic()
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert time.monotonic() - start < 5
    assert list(mirror.dest_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("mode", "evidence"),
    [
        ("html", "its Content-Type is text/html"),  # an honest error page
        ("html-as-binary", "the file is text that starts with '<'"),  # a page sent as binary
    ],
)
def test_html_page_is_refused(make_mirror: Callable[..., Mirror], mode: str, evidence: str) -> None:
    mirror = make_mirror(mode=mode)
    message = re.escape(
        f"{mirror.url} returned an HTML page, not a checkpoint ({evidence}): the link is "
        "wrong, or the server sent an error or login page instead of the file. "
        "Nothing was kept. "
    ) + manual_hint(mirror.url, mirror.dest)
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []


def test_binary_file_starting_with_a_bracket_is_a_checkpoint(
    make_mirror: Callable[..., Mirror],
) -> None:
    """Only text that starts with '<' is a page: one random file in 256 starts with it."""
    data = b"<" + payload(PAYLOAD_BYTES - 1)
    assert any(byte < 9 for byte in data[:512])  # binary from the start
    mirror = make_mirror(data=data)
    assert download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False) == mirror.dest
    assert mirror.dest.read_bytes() == data


def test_truncated_download_is_kept_and_resumed(make_mirror: Callable[..., Mirror]) -> None:
    mirror = make_mirror(mode="truncate")
    half = len(mirror.data) // 2
    message = re.escape(
        f"Download of {mirror.url} stopped early: the connection closed after {half:,} of "
        f"{len(mirror.data):,} bytes. Run the download again to resume it from {mirror.part}."
    )
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert not mirror.dest.exists()
    assert mirror.part.read_bytes() == mirror.data[:half]

    mirror.server.serve(mirror.url.removeprefix(mirror.server.url), mirror.data, "ok")
    path = download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert path.read_bytes() == mirror.data
    assert mirror.requests() == [None, f"bytes={half}-"]


@pytest.mark.parametrize(
    ("mode", "part_bytes", "size_on_record", "expected_requests"),
    [
        # a server that ignores Range: the whole file again, the part overwritten
        ("no-range", 1000, True, ["bytes=1000-"]),
        # a part longer than the file, size unknown: 416 from the server, then afresh
        ("ok", PAYLOAD_BYTES + 10, False, [f"bytes={PAYLOAD_BYTES + 10}-", None]),
        # a part longer than the size on record: thrown away without asking
        ("ok", PAYLOAD_BYTES + 10, True, [None]),
        # an empty part: a plain request
        ("ok", 0, True, [None]),
    ],
)
def test_partial_file_that_cannot_be_resumed_is_replaced(
    make_mirror: Callable[..., Mirror],
    mode: str,
    part_bytes: int,
    size_on_record: bool,
    expected_requests: list[str | None],
) -> None:
    mirror = make_mirror(mode=mode, size_on_record=size_on_record)
    mirror.dest_dir.mkdir()
    mirror.part.write_bytes(b"\0" * part_bytes)
    path = download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert path.read_bytes() == mirror.data
    assert mirror.requests() == expected_requests


def test_complete_part_file_is_verified_without_a_request(
    make_mirror: Callable[..., Mirror],
) -> None:
    mirror = make_mirror()
    mirror.dest_dir.mkdir()
    mirror.part.write_bytes(mirror.data)
    path = download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert path.read_bytes() == mirror.data
    assert mirror.requests() == []


def test_slow_server_times_out_with_resume_advice(make_mirror: Callable[..., Mirror]) -> None:
    mirror = make_mirror(mode="slow", delay_s=3.0)
    message = re.escape(f"Download of {mirror.url} stopped early after 0 bytes (") + (
        r"TimeoutError\(.*\)\)\. "
        + re.escape(f"Run the download again to resume it from {mirror.part}.")
    )
    start = time.monotonic()
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False, timeout=0.5)
    assert time.monotonic() - start < 2.5


@pytest.mark.slow
def test_a_trickling_server_is_stopped_by_the_overall_deadline(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a byte every 0.2 s: each read gets something, so only an overall deadline stops it
    mirror = make_mirror(mode="trickle", delay_s=0.2)
    monkeypatch.setattr(download, "DOWNLOAD_GRACE_S", 1.0)
    monkeypatch.setattr(download, "DOWNLOAD_MIN_BYTES_PER_S", PAYLOAD_BYTES)  # deadline 2 s
    message = (
        re.escape(f"Download of {mirror.url} is too slow: ")
        + r"\d+ bytes in 2 s, its deadline for this file \(at least "
        + re.escape(f"{PAYLOAD_BYTES:,} bytes/s on average after 1 s). ")
        + re.escape(f"Run the download again to resume it from {mirror.part}")
    )
    start = time.monotonic()
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False, timeout=5.0)
    assert time.monotonic() - start < 5.0
    assert mirror.part.is_file()  # kept, to resume from


def test_the_deadline_is_scaled_to_the_expected_size() -> None:
    # two minutes, plus the file at 64 KiB/s: vit_h (2.56 GB) may take 11 hours, no more
    assert download.download_deadline(0) == 120.0
    assert download.download_deadline(2_564_550_879) == pytest.approx(120 + 39131.9, abs=0.1)
    assert download.download_deadline(-5) == 120.0  # a resumed file larger than expected


def test_verified_file_is_neither_downloaded_nor_hashed_again(
    make_mirror: Callable[..., Mirror], count_hashing: list[Path]
) -> None:
    mirror = make_mirror()
    first = download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    # The bytes on disk are hashed once, after they were synced, before the rename.
    assert count_hashing == [mirror.part]
    second = download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert second == first
    assert mirror.requests() == [None]
    assert count_hashing == [mirror.part]

    # Touching the file invalidates the stamp: hashed once more, still no download.
    stat = first.stat()
    os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert count_hashing == [mirror.part, first]
    assert mirror.requests() == [None]


def test_file_placed_by_hand_is_verified_once_and_used(
    make_mirror: Callable[..., Mirror], count_hashing: list[Path]
) -> None:
    mirror = make_mirror(mode="404")
    mirror.dest_dir.mkdir()
    mirror.dest.write_bytes(mirror.data)
    for _ in range(3):
        assert download_checkpoint("vit_b", dest_dir=mirror.dest_dir) == mirror.dest
    assert count_hashing == [mirror.dest]
    assert mirror.requests() == []


@pytest.mark.parametrize(
    "broken",
    [
        b"<html><body>404</body></html>",  # the seed's wget of an error page
        b"",  # an empty file
        b"\0" * PAYLOAD_BYTES,  # the right size, the wrong content
    ],
)
def test_broken_file_in_place_is_downloaded_again(
    make_mirror: Callable[..., Mirror], broken: bytes
) -> None:
    mirror = make_mirror()
    mirror.dest_dir.mkdir()
    mirror.dest.write_bytes(broken)
    path = download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert path.read_bytes() == mirror.data
    assert mirror.requests() == [None]


def test_full_disk_while_writing_removes_the_part(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = make_mirror()

    def disk_full(fh: object, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "write_bytes", disk_full)
    message = re.escape(
        f"The disk is full: no space left to write {mirror.part}. The partial file was "
        "removed. Free some space, or download to another directory with dest_dir=... "
        "(or the SAMKIT_HOME environment variable)."
    )
    with pytest.raises(DownloadError, match=message) as info:
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert list(mirror.dest_dir.iterdir()) == []


def test_other_write_error_removes_the_part(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = make_mirror()

    def io_error(fh: object, chunk: bytes) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(files, "write_bytes", io_error)
    message = re.escape(f"Could not write {mirror.part}: Input/output error.")
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []


def test_too_little_free_space_fails_before_downloading(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = make_mirror()
    full = SimpleNamespace(total=100, used=90, free=10)
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: full)
    message = re.escape(
        f"The disk is full: {mirror.dest_dir} has 10 bytes free, but the download needs "
        f"{PAYLOAD_BYTES:,}."
    )
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []


@pytest.mark.parametrize(
    "model_type",
    [
        "vit_x",  # a typo
        "VIT_B",  # the wrong case
        "",  # empty
        None,  # nothing
        3,  # not a string
    ],
)
def test_unknown_model_type_lists_the_valid_ones(tmp_path: Path, model_type: object) -> None:
    message = re.escape(
        f"model_type must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got {model_type!r}"
    )
    with pytest.raises(ValueError, match=message):
        download_checkpoint(model_type, dest_dir=tmp_path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # a file where a directory is expected
        ({"dest_dir": "FILE"}, "dest_dir must be a directory, but FILE is a file"),
        # an empty path
        ({"dest_dir": ""}, "dest_dir must be a directory path or None, but got ''"),
        # not a path at all
        ({"dest_dir": 5}, "dest_dir must be a directory path or None, but got 5"),
        # a zero timeout
        ({"timeout": 0}, "timeout must be a positive number of seconds, but got 0"),
        # a boolean timeout
        ({"timeout": True}, "timeout must be a positive number of seconds, but got True"),
    ],
)
def test_invalid_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("not a directory")
    with pytest.raises(ValueError, match=re.escape(message.format(tmp=tmp_path))):
        download_checkpoint("vit_b", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        (None, DEFAULT_WEIGHTS_URL + "sam_vit_b_01ec64.pth"),  # Meta's server by default
        ("", DEFAULT_WEIGHTS_URL + "sam_vit_b_01ec64.pth"),  # empty means unset
        ("http://mirror.lan/sam/", "http://mirror.lan/sam/sam_vit_b_01ec64.pth"),  # a mirror
        ("https://mirror.lan/sam", "https://mirror.lan/sam/sam_vit_b_01ec64.pth"),  # no slash
    ],
)
def test_weights_url_honours_the_mirror_variable(
    monkeypatch: pytest.MonkeyPatch, base: str | None, expected: str
) -> None:
    if base is None:
        monkeypatch.delenv("SAMKIT_WEIGHTS_URL", raising=False)
    else:
        monkeypatch.setenv("SAMKIT_WEIGHTS_URL", base)
    assert checkpoint_url(VIT_B) == expected


def test_default_url_is_meta_and_registry_matches_design() -> None:
    assert DEFAULT_WEIGHTS_URL == "https://dl.fbaipublicfiles.com/segment_anything/"
    official = {name: spec.checkpoint for name, spec in MODEL_TYPES.items() if spec.checkpoint}
    assert {name: (c.filename, c.sha256[:8], c.size) for name, c in official.items()} == {
        "vit_h": ("sam_vit_h_4b8939.pth", "a7bf3b02", 2_564_550_879),
        "vit_l": ("sam_vit_l_0b3195.pth", "3adcc431", None),
        "vit_b": ("sam_vit_b_01ec64.pth", "ec2df627", 375_042_383),
    }


@pytest.mark.parametrize(
    "base",
    [
        "ftp://mirror.lan/sam/",  # a scheme urllib would take but we do not
        "/srv/weights",  # a local directory: place the file by hand instead
    ],
)
def test_weights_url_rejects_other_schemes(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    monkeypatch.setenv("SAMKIT_WEIGHTS_URL", base)
    message = re.escape(
        "SAMKIT_WEIGHTS_URL must be an http:// or https:// URL of a directory that holds "
        f"the checkpoint files, but got {base!r}"
    )
    with pytest.raises(ValueError, match=message):
        checkpoint_url(VIT_B)


def test_mirror_is_used_and_default_dir_is_samkit_home(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mirror = make_mirror()
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path / "home"))
    path = download_checkpoint("vit_b", progress=False)
    assert path == tmp_path / "home" / "sam_vit_b_01ec64.pth"
    assert mirror.requests() == [None]


@pytest.mark.parametrize(
    ("samkit_home", "colab", "expected"),
    [
        ("{tmp}/home", False, "{tmp}/home"),  # SAMKIT_HOME wins
        ("{tmp}/home", True, "{tmp}/home"),  # even in Colab
        ("", True, "{tmp}/content/weights"),  # Colab: HOME/weights, as the tutorial
        ("", False, "{cache}"),  # elsewhere: the per-user cache
    ],
)
def test_default_weights_dir(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    samkit_home: str,
    colab: bool,
    expected: str,
) -> None:
    monkeypatch.setenv("SAMKIT_HOME", samkit_home.format(tmp=tmp_path))
    monkeypatch.setattr(env, "in_colab", lambda: colab)
    monkeypatch.setattr(locations, "home_dir", lambda: tmp_path / "content")
    cache = pooch.os_cache("samkit")
    assert default_weights_dir() == Path(expected.format(tmp=tmp_path, cache=cache))


@pytest.mark.parametrize(
    "dest_dir",
    [
        None,  # the default directory is not consulted
        "{tmp}/elsewhere",  # nor is a given one created
    ],
)
def test_shapes_returns_the_bundled_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dest_dir: str | None
) -> None:
    bundled = tmp_path / "models" / "sam_shapes.pt"
    bundled.parent.mkdir()
    bundled.write_bytes(b"weights")
    monkeypatch.setattr(locations, "data_dir", lambda: tmp_path)
    given = None if dest_dir is None else dest_dir.format(tmp=tmp_path)
    assert download_checkpoint("shapes", dest_dir=given) == bundled
    assert not (tmp_path / "elsewhere").exists()


def test_missing_shapes_checkpoint_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "models" / "sam_shapes.pt"
    monkeypatch.setattr(locations, "data_dir", lambda: tmp_path)
    message = re.escape(f"samkit's bundled file is missing: {missing}")
    with pytest.raises(FileNotFoundError, match=message):
        download_checkpoint("shapes")


# ------------------------------------------------------------------ two downloads at once

_CHILD = """
import sys, time
from pathlib import Path
from samkit import files, weights

filename, sha256, size, dest, ready, go = sys.argv[1:]
checkpoint = weights.Checkpoint(filename, sha256, int(size))
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
path = weights.fetch_checkpoint(checkpoint, dest_dir=dest, progress=True)
print(files.sha256_file(path))
"""


@pytest.mark.slow  # two processes race through a real server
def test_two_downloads_of_one_checkpoint_into_one_folder_at_once(
    make_mirror: Callable[..., Mirror], tmp_path: Path
) -> None:
    """Two processes (two notebooks, two `samkit download`s) ask for one file at once."""
    mirror = make_mirror(mode="slow", delay_s=2.0)
    entry = MODEL_TYPES["vit_b"].checkpoint
    assert entry is not None
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    go = tmp_path / "go"
    children = []
    for i in range(2):
        ready = tmp_path / f"ready{i}"
        arguments = [entry.filename, entry.sha256, str(entry.size), str(mirror.dest_dir)]
        children.append(
            (
                ready,
                subprocess.Popen(
                    [sys.executable, str(script), *arguments, str(ready), str(go)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=os.environ.copy(),
                ),
            )
        )
    deadline = time.monotonic() + 240
    while not all(ready.exists() for ready, _ in children):
        assert time.monotonic() < deadline, "the child processes did not start"
        assert all(child.poll() is None for _, child in children)
        time.sleep(0.05)
    go.touch()  # both start downloading now
    outputs = [child.communicate(timeout=240) for _, child in children]
    codes = [child.returncode for _, child in children]
    assert codes == [0, 0], outputs
    expected = hashlib.sha256(mirror.data).hexdigest()
    assert [out for out, _ in outputs] == [expected + "\n"] * 2
    assert mirror.dest.read_bytes() == mirror.data
    # One of them downloaded; the other waited for it and used the verified file.
    assert mirror.requests() == [None]
    waited = [err for _, err in outputs if "another process is downloading it" in err]
    assert len(waited) == 1, outputs
    assert waited[0].startswith(
        f"{entry.filename}: another process is downloading it into {mirror.dest_dir}; "
        "waiting for it to finish\n"
    )
    # Neither the part nor the lock is left behind.
    assert sorted(p.name for p in mirror.dest_dir.iterdir()) == [
        entry.filename,
        entry.filename + ".verified.json",
    ]


def test_a_file_changed_on_disk_is_never_reported_as_verified(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer (or a failing disk) changes the bytes after they were hashed."""
    mirror = make_mirror()

    def write_and_clobber(fh: Any, chunk: bytes) -> None:
        fh.write(chunk)
        with open(fh.name, "r+b") as other:  # a second writer, at the start of the file
            other.write(b"\0" * 16)

    monkeypatch.setattr(files, "write_bytes", write_and_clobber)
    corrupted = b"\0" * 16 + mirror.data[16:]
    message = re.escape(
        f"Download of {mirror.url}: the file on disk is not what was received (sha256 "
        f"{hashlib.sha256(corrupted).hexdigest()} on disk, "
        f"{hashlib.sha256(mirror.data).hexdigest()} received): another program wrote to "
        f"{mirror.part} at the same time, or the disk is failing. The file was removed; "
        "run the download again."
    )
    with pytest.raises(DownloadError, match=f"^{message}$"):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []


def test_lock_is_released_when_the_download_fails(make_mirror: Callable[..., Mirror]) -> None:
    mirror = make_mirror(mode="500")
    with pytest.raises(DownloadError, match="HTTP 500"):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []
    mirror.server.serve(mirror.url.removeprefix(mirror.server.url), mirror.data, "ok")
    assert download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False) == mirror.dest


# ------------------------------------------------------------------ what arrived instead


@pytest.mark.parametrize(
    ("mode", "served", "what", "evidence"),
    [
        # a JSON error body announced as such
        ("json", None, "a JSON file", "its Content-Type is application/json"),
        # a JSON error body sent as binary
        (
            "ok",
            b'{"error": "AccessDenied", "message": "Request has expired"}',
            "a JSON file",
            'it starts with \'{"error": "AccessDenied", "message": "Request has expired"}\'',
        ),
        # a gzip-compressed error page
        (
            "ok",
            gzip.compress(b"<html>Forbidden</html>", mtime=0),
            "a gzip file",
            "it starts with gzip's magic bytes 1f 8b",
        ),
        # plain text
        ("ok", b"Access Denied\n", "a text file", "it starts with 'Access Denied'"),
    ],
)
def test_json_gzip_and_text_downloads_are_named(
    make_mirror: Callable[..., Mirror], mode: str, served: bytes | None, what: str, evidence: str
) -> None:
    mirror = make_mirror(mode=mode, served=served)
    message = re.escape(
        f"{mirror.url} returned {what}, not a checkpoint ({evidence}): the link is wrong, or "
        "the server sent an error message instead of the file. Nothing was kept. "
    ) + manual_hint(mirror.url, mirror.dest)
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []


def test_bom_prefixed_html_download_is_named_html(make_mirror: Callable[..., Mirror]) -> None:
    mirror = make_mirror(served=b"\xef\xbb\xbf<!DOCTYPE html><html>Sign in</html>")
    message = re.escape(
        f"{mirror.url} returned an HTML page, not a checkpoint (the file is text that starts "
        "with '<'):"
    )
    with pytest.raises(DownloadError, match=message):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert list(mirror.dest_dir.iterdir()) == []


# ------------------------------------------------------------------ read-only file systems


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (errno.EROFS, "it is on a read-only file system"),  # a read-only mount
        (errno.EACCES, "permission denied"),  # a folder of another user
    ],
)
def test_read_only_file_system_is_not_called_a_full_disk(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch, code: int, why: str
) -> None:
    mirror = make_mirror()
    mirror.dest_dir.mkdir()
    real_open = os.open

    def refuse_writes(path: Any, flags: int, *args: Any) -> int:
        if flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(weights.os, "open", refuse_writes)
    # A read-only mount reports no free space: that must not be called a full disk.
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: SimpleNamespace(free=0))
    message = (
        f"Cannot write the checkpoint into {mirror.dest_dir}: {why}. Choose a writable "
        "directory with dest_dir=... (or the SAMKIT_HOME environment variable)."
    )
    with pytest.raises(DownloadError, match=f"^{re.escape(message)}$"):
        download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)
    assert mirror.requests() == []


def test_verified_file_on_a_read_only_file_system_is_used(
    make_mirror: Callable[..., Mirror], monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = make_mirror()
    path = download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False)

    def read_only(*args: Any) -> int:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(weights.os, "open", read_only)
    assert download_checkpoint("vit_b", dest_dir=mirror.dest_dir, progress=False) == path
    assert mirror.requests() == [None]
