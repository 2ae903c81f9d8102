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
import torch

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
            "encoder-abcdef-openvino2026.4.1_22982_e213a_4-1024px-f32-v4",
        ),
        ("", 384, "bf16", "encoder-abcdef-openvino-384px-bf16-v4"),
        ("2026.4", 1024, "int8", "encoder-abcdef-openvino2026.4-1024px-int8-v4"),
    ],
)
def test_cache_key(version: str, size: int, precision: str, expected: str) -> None:
    assert cache.cache_key("abcdef", version, size, precision) == expected


MANIFEST = {"encoder_sha256": "ab" * 32, "precision": "int8", "format": cache.CACHE_FORMAT}


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
        ('{"precision": "f32"}', {}, "the manifest's encoder_sha256 is None, expected"),
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


def test_the_key_is_the_encoders_weights_wherever_they_were_loaded_from(tmp_path: Path) -> None:
    sam = samkit.load_sam("shapes", device="cpu")
    digest = cache.encoder_sha256(sam.image_encoder)
    assert len(digest) == 64 and digest == cache.encoder_sha256(sam.image_encoder)
    # the same weights saved elsewhere (a fine-tuned checkpoint, whose decoder changed)
    state = sam.state_dict()
    state["mask_decoder.iou_token.weight"] = state["mask_decoder.iou_token.weight"] + 1
    copy = tmp_path / "tuned.pth"
    torch.save(state, copy)
    tuned = samkit.load_sam("shapes", device="cpu", checkpoint=copy)
    assert sha256_file(copy) != sha256_file(samkit.download_checkpoint("shapes"))
    assert cache.encoder_sha256(tuned.image_encoder) == digest
    # one value of the encoder changed, or one name: another key
    with torch.no_grad():
        next(tuned.image_encoder.parameters()).view(-1)[0] += 1e-3
    assert cache.encoder_sha256(tuned.image_encoder) != digest
    renamed = torch.nn.Module()
    renamed.other = sam.image_encoder
    assert cache.encoder_sha256(renamed) != digest


def _entry(folder: Path, weights: str, precision: str) -> Path:
    """A cache entry with a model (two small files), as write_entry leaves it."""
    entry = cache.cache_entry(folder, weights, "2026.4", 384, precision)
    entry.path.mkdir(parents=True)
    files = {cache.MODEL_XML: b"<net/>", cache.MODEL_BIN: precision.encode()}
    for name, data in files.items():
        (entry.path / name).write_bytes(data)
    hashes = {name: sha256_file(entry.path / name) for name in files}
    record = {**entry.manifest, "model": True, "files": hashes}
    (entry.path / cache.MANIFEST).write_text(json.dumps(record), encoding="utf-8")
    return entry.path


def test_a_fine_tuned_checkpoints_folder_gets_its_bases_entries(tmp_path: Path) -> None:
    base, tuned = tmp_path / "base" / "fast-cache", tmp_path / "tuned" / "fast-cache"
    mine = [_entry(base, "ab" * 32, p) for p in ("f32", "int8")]
    other = _entry(base, "cd" * 32, "f32")  # another encoder's entry stays where it is
    (base / f"{mine[0].name}.x.part").mkdir()  # a conversion under way is not shared
    made = cache.share_entries(base, tuned, "ab" * 32)
    assert sorted(p.name for p in made) == sorted(p.name for p in mine)
    assert sorted(p.name for p in tuned.iterdir()) == sorted(p.name for p in mine)
    for entry in mine:
        manifest = cache.verify_entry(tuned / entry.name, {"encoder_sha256": "ab" * 32})
        assert manifest["model"] is True
    assert not (tuned / other.name).exists()
    # an entry already there is kept; the same folder, or no base cache, gives nothing
    assert cache.share_entries(base, tuned, "ab" * 32) == []
    assert cache.share_entries(base, base, "ab" * 32) == []
    assert cache.share_entries(tmp_path / "none", tuned, "ab" * 32) == []


def test_an_entry_that_does_not_verify_is_not_shared(tmp_path: Path) -> None:
    base, tuned = tmp_path / "base" / "fast-cache", tmp_path / "tuned" / "fast-cache"
    entry = _entry(base, "ab" * 32, "f32")
    (entry / cache.MODEL_BIN).write_bytes(b"damaged")
    with pytest.warns(FastBackendWarning, match="could not share the cached encoder") as record:
        assert cache.share_entries(base, tuned, "ab" * 32) == []
    assert "encoder.bin does not match its recorded sha256" in str(record[0].message)
    assert list(tuned.iterdir()) == []  # nothing half-made left behind


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
    weights = cache.encoder_sha256(samkit.load_sam("shapes", device="cpu").image_encoder)
    lock = home / cache.CACHE_DIRNAME / f"encoder-{weights[:20]}.lock"
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
