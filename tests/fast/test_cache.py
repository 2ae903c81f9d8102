"""The on-disk cache of converted encoders: its folder, its keys, hits, corrupted entries."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import samkit
from samkit.fast import cache, encoder
from samkit.fast.info import FastBackendWarning
from samkit.fast.openvino import OpenVINOImageEncoder
from samkit.files import sha256_file
from samkit.locks import locked


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_second_load_hits_the_cache(home: Path, conversions: list[int]) -> None:
    first = samkit.load_sam("shapes", device="cpu", fast=True)
    assert conversions == [1]
    assert not first.image_encoder.fast_info.cache_hit
    second = samkit.load_sam("shapes", device="cpu", fast=True)
    assert conversions == [1], "the second load converted the encoder again"
    assert second.image_encoder.fast_info.cache_hit
    entries = list((home / cache.CACHE_DIRNAME).iterdir())
    assert len(entries) == 1, entries  # no temporary ".part" folder left behind
    assert entries[0].name.startswith("encoder-")
    assert {p.name for p in entries[0].iterdir()} == {"encoder.xml", "encoder.bin", "manifest.json"}


@pytest.mark.parametrize("damage", ["truncate_bin", "garbage_xml", "drop_manifest"])
@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_corrupted_cache_entry_is_converted_again_with_a_warning(
    home: Path, conversions: list[int], damage: str
) -> None:
    samkit.load_sam("shapes", device="cpu", fast=True)
    (entry,) = (home / cache.CACHE_DIRNAME).iterdir()
    if damage == "truncate_bin":
        data = (entry / "encoder.bin").read_bytes()
        (entry / "encoder.bin").write_bytes(data[: len(data) // 2])
    elif damage == "garbage_xml":
        (entry / "encoder.xml").write_text("<net>not a model", encoding="utf-8")
    else:
        (entry / "manifest.json").unlink()
    with pytest.warns(FastBackendWarning, match="corrupted") as record:
        sam = samkit.load_sam("shapes", device="cpu", fast=True)
    assert len(record) == 1
    assert conversions == [1, 1]
    assert isinstance(sam.image_encoder, OpenVINOImageEncoder)
    assert not sam.image_encoder.fast_info.cache_hit
    # The entry was rewritten whole: the next load is a clean hit.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = samkit.load_sam("shapes", device="cpu", fast=True)
    assert again.image_encoder.fast_info.cache_hit


def test_cache_dir_is_next_to_a_user_checkpoint(home: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine" / "weights.pt"
    mine.parent.mkdir()
    mine.write_bytes(b"x")
    assert cache.cache_dir_for(mine) == mine.parent.resolve() / cache.CACHE_DIRNAME
    bundled = samkit.download_checkpoint("shapes")
    assert cache.cache_dir_for(bundled) == home / cache.CACHE_DIRNAME


@pytest.mark.parametrize(
    ("version", "size", "precision", "expected"),
    [
        (
            "2026.4.1-22982-e213a/4",
            1024,
            "f32",
            "encoder-abcdef-openvino2026.4.1_22982_e213a_4-1024px-f32-v3",
        ),
        ("", 384, "bf16", "encoder-abcdef-openvino-384px-bf16-v3"),
        ("2026.4", 1024, "int8", "encoder-abcdef-openvino2026.4-1024px-int8-v3"),
    ],
)
def test_cache_key(version: str, size: int, precision: str, expected: str) -> None:
    assert cache.cache_key("abcdef", version, size, precision) == expected


MANIFEST = {"checkpoint_sha256": "ab" * 32, "precision": "int8", "format": cache.CACHE_FORMAT}


def test_a_refused_trial_is_cached_as_its_manifest_alone(tmp_path: Path) -> None:
    entry = tmp_path / "fast-cache" / "encoder-x"
    cache.write_entry(entry, None, None, {**MANIFEST, "mask_iou_mean": 0.5})
    assert [p.name for p in entry.parent.iterdir()] == ["encoder-x"]  # no ".part" left
    assert [p.name for p in entry.iterdir()] == ["manifest.json"]
    record = cache.verify_entry(entry, MANIFEST)
    assert (record["model"], record["mask_iou_mean"]) == (False, 0.5)


def test_a_failed_write_leaves_no_entry(tmp_path: Path) -> None:
    class Disk:
        def save_model(self, *args: object, **kwargs: object) -> None:
            raise OSError(28, "No space left on device")

    entry = tmp_path / "encoder-x"
    with pytest.raises(OSError, match="No space left"):
        cache.write_entry(entry, object(), Disk(), MANIFEST)
    assert list(tmp_path.iterdir()) == []
    with pytest.warns(FastBackendWarning, match="could not cache the converted encoder"):
        cache.save_entry(entry, object(), Disk(), MANIFEST)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("manifest", "files", "message"),
    [
        (None, {}, "unreadable manifest"),  # no manifest.json
        ("[1, 2]", {}, "the manifest is not a JSON object"),
        ('{"precision": "f32"}', {}, "the manifest's checkpoint_sha256 is None, expected"),
        ({**MANIFEST, "model": True, "files": {}}, {}, "encoder.xml is missing"),
        (
            {**MANIFEST, "model": True, "files": {"encoder.xml": "0" * 64}},
            {"encoder.xml": b"<net/>", "encoder.bin": b""},
            "encoder.xml does not match its recorded sha256",
        ),
    ],
)
def test_verify_entry_says_what_is_wrong(
    tmp_path: Path, manifest: object, files: dict[str, bytes], message: str
) -> None:
    if manifest is not None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        (tmp_path / "manifest.json").write_text(text, encoding="utf-8")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(ValueError, match=message):
        cache.verify_entry(tmp_path, MANIFEST)


def test_a_corrupted_entry_is_removed_with_a_warning(tmp_path: Path) -> None:
    entry = cache.cache_entry(tmp_path, "ab" * 32, "2025.1", 384, "f32")
    entry.path.mkdir()
    (entry.path / "manifest.json").write_text("{", encoding="utf-8")
    with pytest.warns(FastBackendWarning, match="is corrupted") as record:
        assert cache.read_entry(entry) is None
    assert record[0].filename == __file__
    assert not entry.path.exists()
    assert cache.read_entry(entry) is None  # no entry: nothing to say


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_a_second_load_waits_for_the_conversion_and_reuses_it(
    home: Path,
    conversions: list[int],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkpoint = samkit.download_checkpoint("shapes")
    lock = home / cache.CACHE_DIRNAME / f"encoder-{sha256_file(checkpoint)[:20]}.lock"
    lock.parent.mkdir(parents=True)
    loaded: list[Any] = []
    printed = ""
    with locked(lock):  # another process is converting this checkpoint
        waiting = threading.Thread(
            target=lambda: loaded.append(samkit.load_sam("shapes", device="cpu", fast=True))
        )
        waiting.start()
        deadline = time.monotonic() + 120
        while "otro proceso" not in printed and time.monotonic() < deadline:
            time.sleep(0.05)
            printed += capsys.readouterr().out
        assert "otro proceso está convirtiendo este encoder" in printed
        assert waiting.is_alive() and conversions == [], "it did not wait for the lock"
        # the other process converts (it holds the lock, so it does not take it again)
        monkeypatch.setattr(encoder, "_one_at_a_time", lambda build: contextlib.nullcontext())
        samkit.load_sam("shapes", device="cpu", fast=True)
        assert conversions == [1]
    waiting.join(timeout=600)
    assert not waiting.is_alive()
    assert conversions == [1], "the waiting load converted the encoder again"
    assert loaded[0].image_encoder.fast_info.cache_hit
    assert not lock.exists()
