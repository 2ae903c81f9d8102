from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import stat
from pathlib import Path
from typing import IO, Any

import pytest

from samkit import files
from samkit.files import decode_text, json_text, read_json


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


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_text_writes_nan_and_infinity_as_null() -> None:
    content = {"score": math.nan, "area": 3, "boxes": [[1.0, math.inf], (-math.inf,)]}
    text = json_text(content)
    assert _strict(text) == {"score": None, "area": 3, "boxes": [[1.0, None], [None]]}
    assert json.dumps(content).count("NaN") == 1  # what json.dumps alone would write


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b'{"a": 1}', '{"a": 1}'),
        ('{"a": "\u00e9"}'.encode("utf-8-sig"), '{"a": "\u00e9"}'),
        ('{"a": "\u00e9"}'.encode("utf-16"), '{"a": "\u00e9"}'),  # Windows' "Unicode"
        ('{"a": "\u00e9"}'.encode("utf-16-be").join([b"\xfe\xff", b""]), '{"a": "\u00e9"}'),
        ('{"a": "\u00e9"}'.encode("utf-32"), '{"a": "\u00e9"}'),
    ],
)
def test_decode_text(data: bytes, text: str) -> None:
    assert decode_text(data, "f.json") == text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"a": "\xe9"}',
            r"f.json must be UTF-8 text \(or UTF-16/UTF-32 with a byte-order mark\), but byte "
            r"0xe9 at position 7 is not utf-8",
        ),
        (
            "{}".encode("utf-16-le"),
            r"but it holds NUL bytes \(UTF-16 without a byte-order mark, or not text\)",
        ),
    ],
)
def test_decode_text_refuses(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_text(data, "f.json")


def test_read_json_refuses_deep_nesting_clearly(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    message = (
        rf"{path} is nested too deeply to be read \(arrays or objects inside one another "
        r"about a thousand levels deep\): it is not a file samkit reads"
    )
    with pytest.raises(ValueError, match=message):
        read_json(path)


def test_read_json(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"a": [1, 2]}', encoding="utf-16")
    assert read_json(path) == {"a": [1, 2]}
    path.write_text("{")
    with pytest.raises(ValueError, match=rf"{path} is not a JSON file: Expecting"):
        read_json(path)
