"""Source files opened safely (no FIFO hangs a run) and known by their content."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from samkit.files import sha256_file
from samkit.locations import data_file
from samkit.model import MODEL_TYPES
from samkit.segment.source import (
    MAX_SOURCE_BYTES,
    SourceError,
    checkpoint_sha256,
    same_source,
    source_stamp,
    write_checkpoint_cache,
)


def test_a_fifo_is_refused_without_opening_it_for_ever(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    start = time.monotonic()
    with pytest.raises(
        SourceError,
        match=r"^a named pipe \(FIFO\), not an image file: samkit segment reads regular files "
        r"only$",
    ):
        source_stamp(str(tmp_path / "pipe.png"))
    assert time.monotonic() - start < 5


def test_a_folder_is_refused_by_its_kind(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^a folder, not an image file"):
        source_stamp(str(tmp_path))


def test_a_broken_link_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "link.png").symlink_to(tmp_path / "gone.png")
    with pytest.raises(
        SourceError, match=f"^a broken symbolic link: its target {tmp_path / 'gone.png'} does"
    ):
        source_stamp(str(tmp_path / "link.png"))


def test_a_file_too_large_to_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samkit.segment import source

    (tmp_path / "big.png").write_bytes(b"x" * 100)
    monkeypatch.setattr(source, "MAX_SOURCE_BYTES", 10)
    with pytest.raises(SourceError, match=r"^the file is 100 bytes, more than the 10 bytes"):
        source_stamp(str(tmp_path / "big.png"))
    assert MAX_SOURCE_BYTES == 1 << 30


def test_the_stamp_holds_the_content_hash(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"abc")
    stamp = source_stamp(str(tmp_path / "a.png"))
    assert stamp["sha256"] == sha256_file(tmp_path / "a.png")
    assert stamp["size"] == 3
    assert set(stamp) == {"size", "mtime_ns", "ctime_ns", "inode", "sha256"}


def test_same_size_and_restored_mtime_is_still_another_image(tmp_path: Path) -> None:
    image = tmp_path / "a.bmp"
    image.write_bytes(b"first content")
    recorded = source_stamp(str(image))
    other = tmp_path / "other.bmp"
    other.write_bytes(b"other content")  # the same size
    os.utime(other, ns=(recorded["mtime_ns"], recorded["mtime_ns"]))
    shutil.copy2(other, image)  # as cp -p does: the mtime comes along
    assert os.stat(image).st_mtime_ns == recorded["mtime_ns"]
    assert os.stat(image).st_size == recorded["size"]
    assert not same_source(str(image), recorded)


def test_a_touched_file_with_the_same_content_is_the_same(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"content")
    recorded = source_stamp(str(image))
    os.utime(image, ns=(1, 1))
    assert same_source(str(image), recorded)
    assert not same_source(str(image), {**recorded, "sha256": "0" * 64})
    assert not same_source(str(image), {"size": 7})  # an earlier record: no sha256
    assert not same_source(str(tmp_path / "gone.png"), recorded)


def test_checkpoint_sha256_is_cached_by_path_and_stamp(tmp_path: Path) -> None:
    checkpoint = tmp_path / "w.pt"
    checkpoint.write_bytes(b"weights")
    (tmp_path / ".samkit").mkdir()
    digest, entry = checkpoint_sha256("shapes", str(checkpoint), tmp_path)
    assert digest == sha256_file(checkpoint)
    write_checkpoint_cache(tmp_path, entry)
    assert checkpoint_sha256("shapes", str(checkpoint), tmp_path) == (digest, None)
    checkpoint.write_bytes(b"WEIGHTS")  # another checkpoint, the same size, at the same path
    changed, entry = checkpoint_sha256("shapes", str(checkpoint), tmp_path)
    assert changed != digest and entry is not None


def test_the_default_checkpoint_is_known_by_its_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = data_file(*MODEL_TYPES["shapes"].bundled or ())
    assert checkpoint_sha256("shapes", None, tmp_path)[0] == sha256_file(bundled)
    record = MODEL_TYPES["vit_b"].checkpoint
    assert record is not None
    monkeypatch.delenv("SAMKIT_CHECKPOINT", raising=False)
    # an official checkpoint: its sha256 on record, which the download is verified against
    assert checkpoint_sha256("vit_b", None, tmp_path) == (record.sha256, None)
    assert not list(tmp_path.iterdir())  # nothing downloaded, nothing written


def test_a_damaged_cache_is_hashed_again(tmp_path: Path) -> None:
    checkpoint = tmp_path / "w.pt"
    checkpoint.write_bytes(b"weights")
    (tmp_path / ".samkit").mkdir()
    (tmp_path / ".samkit" / "checkpoint.json").write_text(json.dumps({"stamp": 1}))
    assert checkpoint_sha256("shapes", str(checkpoint), tmp_path)[0] == sha256_file(checkpoint)
