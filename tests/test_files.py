from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import IO

import pytest

from samkit import files


def test_atomic_write_writes_text_and_bytes(tmp_path: Path) -> None:
    assert files.atomic_write(tmp_path / "a.txt", "hola ñ").read_text(encoding="utf-8") == "hola ñ"
    assert files.atomic_write(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_atomic_write_gives_the_umask_mode(tmp_path: Path) -> None:
    path = files.atomic_write(tmp_path / "a.txt", "x")
    assert stat.S_IMODE(path.stat().st_mode) == files.umask_mode()


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = files.atomic_write(tmp_path / "a.txt", "old")

    def full(file: IO[bytes], data: bytes) -> None:
        file.write(data[:1])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "write_bytes", full)
    message = f"cannot write {path}: the disk is full; nothing was changed there"
    with pytest.raises(OSError, match=f"^{message}$") as info:
        files.atomic_write(path, "new")
    assert info.value.errno == errno.ENOSPC
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_ctrl_c_inside_the_writer_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), files.atomic_writer(tmp_path / "a.txt") as file:
        file.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"folder not found: .*missing"):
        files.atomic_write(tmp_path / "missing" / "a.txt", "x")


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (errno.EROFS, "the file system is read-only"),
        (errno.EACCES, "permission denied"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_write_error_says_why(number: int, words: str) -> None:
    named = files.write_error(OSError(number, os.strerror(number)), Path("x/y.png"))
    assert str(named) == f"cannot write x/y.png: {words}; nothing was changed there"
    assert named.errno == number


def test_sha256_file_matches_hashlib_and_continues_a_digest(tmp_path: Path) -> None:
    data = os.urandom(files.CHUNK_BYTES + 5)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert files.sha256_file(path) == hashlib.sha256(data).hexdigest()
    running = hashlib.sha256(b"head")
    assert files.sha256_file(path, running) == hashlib.sha256(b"head" + data).hexdigest()


@pytest.mark.parametrize(
    ("head", "sniffed"),
    [
        (b"<!DOCTYPE html><html>", ("HTML", "<!DOCTYPE html><html>")),
        (files.UTF8_BOM + b"  \n<html>", ("HTML", "<html>")),
        (b"<html>caf\xe9</html>", ("HTML", "<html>caf\ufffd</html>")),  # Latin-1 page
        (b'{"error": "AccessDenied"}', ("JSON", '{"error": "AccessDenied"}')),
        (b"[1, 2]", ("JSON", "[1, 2]")),
        (b"\x1f\x8b\x08\x00", ("gzip", "")),
        (b"Not Found\n", ("text", "Not Found")),
        (b"PK\x03\x04rest", None),  # a zip checkpoint
        (b"\x80\x02}q\x00(", None),  # a pickle
        (b"<\x00\x01binary", None),  # binary that starts with '<'
        (b"", None),
    ],
)
def test_sniff(head: bytes, sniffed: tuple[str, str] | None) -> None:
    assert files.sniff(head) == sniffed
