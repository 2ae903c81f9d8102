"""samkit.download on its own; the whole download (server, resume, locks) is in test_weights.py."""

from __future__ import annotations

import errno
from pathlib import Path

from samkit import download, weights


def test_weights_offers_the_download_records() -> None:
    assert weights.Checkpoint is download.Checkpoint
    assert weights.DownloadError is download.DownloadError
    assert issubclass(weights.ChecksumError, download.DownloadError)


def test_unwritable_says_why_and_what_to_do() -> None:
    error = download.unwritable(Path("w"), OSError(errno.EROFS, "Read-only file system"))
    assert str(error).startswith("Cannot write the checkpoint into w: it is on a read-only file")
    assert "dest_dir=..." in str(error)


def test_reads_are_small_enough_to_keep_what_arrived() -> None:
    assert download.READ_BYTES <= 1 << 20
