"""The on-disk cache of converted encoders.

An entry is a folder in ``fast-cache/`` named by :func:`cache_key` (the sha256 of the
image encoder's weights, the backend's version, the input size, the precision). It holds
the converted model (``encoder.xml``, ``encoder.bin``) and a ``manifest.json`` that
records what it was made from and the sha256 of each file; an entry for a
reduced-precision trial that was refused holds only the manifest (``"model": false``), so
that the trial is not run again. An entry is written whole under a temporary name and
then renamed; one that does not match its manifest is removed, with a warning, and made again.

The key is the image encoder's weights, not the checkpoint file: a fine-tuned checkpoint
(whose image encoder stays frozen) has the same encoder as its base, and
:func:`share_entries` puts the base's entries beside it, so it loads fast with no new
conversion.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from samkit.fast.info import warn
from samkit.files import sha256_file
from samkit.locations import data_dir, weights_dir

#: Bumped when the layout of a cache entry or the conversion changes (4: keyed by the
#: encoder's weights, no longer by the checkpoint file).
CACHE_FORMAT = 4
#: The folder, inside a weights directory, that holds converted encoders.
CACHE_DIRNAME = "fast-cache"
#: The converted model's files and the manifest, inside an entry.
MODEL_XML = "encoder.xml"
MODEL_BIN = "encoder.bin"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class CacheEntry:
    """One entry of the cache: where it is, and what its manifest must record.

    Attributes:
        path: The entry's folder (it may not exist yet).
        manifest: The encoder weights' sha256, the backend and its version, the input size,
            the precision and :data:`CACHE_FORMAT`.
    """

    path: Path
    manifest: dict[str, Any]


def cache_dir_for(checkpoint: str | os.PathLike[str]) -> Path:
    """Where converted encoders of a checkpoint are kept.

    ``fast-cache/`` next to the checkpoint; for a bundled checkpoint (package data,
    which may be read-only) or a checkpoint in a folder that cannot be written,
    ``fast-cache/`` in ``samkit.locations.weights_dir()``.

    Args:
        checkpoint: The weights file.

    Returns:
        The cache folder (it may not exist yet).
    """
    path = Path(checkpoint).resolve()
    bundled = path.is_relative_to(data_dir().resolve())
    if not bundled and os.access(path.parent, os.W_OK):
        return path.parent / CACHE_DIRNAME
    return weights_dir() / CACHE_DIRNAME


def encoder_sha256(encoder: torch.nn.Module) -> str:
    """The hex sha256 of an image encoder's weights: every tensor's name, dtype, shape, bytes.

    Two encoders with equal weights have the same digest wherever they were loaded from
    (a base checkpoint and the checkpoints fine-tuned from it); any changed value gives
    another.

    Args:
        encoder: The PyTorch image encoder (``sam.image_encoder``).

    Returns:
        64 hex digits.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()


def cache_key(weights_sha256: str, backend_version: str, input_size: int, precision: str) -> str:
    """The name of a cache entry: encoder weights, backend version, input size, precision.

    Args:
        weights_sha256: The encoder weights' hex sha256 (:func:`encoder_sha256`).
        backend_version: The backend's version string (``openvino.__version__``), with
            the instruction set the entry's speed was measured on.
        input_size: The encoder's input side in pixels (1024 for the official models).
        precision: ``"f32"``, ``"int8"`` or ``"bf16"``.

    Returns:
        A file-name-safe key.

    Example:
        ```pycon
        >>> from samkit.fast.cache import cache_key
        >>> cache_key("0123456789abcdef0123456789", "2025.1.0-17911/x", 1024, "int8")
        'encoder-0123456789abcdef0123-openvino2025.1.0_17911_x-1024px-int8-v4'

        ```
    """
    version = re.sub(r"[^A-Za-z0-9.]+", "_", backend_version)[:40]
    return (
        f"encoder-{weights_sha256[:20]}-openvino{version}-{input_size}px-{precision}"
        f"-v{CACHE_FORMAT}"
    )


def cache_entry(
    folder: Path, weights_sha256: str, backend_version: str, input_size: int, precision: str
) -> CacheEntry:
    """The entry of one converted encoder in ``folder`` (see :func:`cache_key`).

    Args:
        folder: The cache folder (:func:`cache_dir_for`).
        weights_sha256: The encoder weights' hex sha256 (:func:`encoder_sha256`).
        backend_version: ``openvino.__version__``.
        input_size: The encoder's input side in pixels.
        precision: ``"f32"``, ``"int8"`` or ``"bf16"``.

    Returns:
        The entry (its folder may not exist yet).
    """
    key = cache_key(weights_sha256, backend_version, input_size, precision)
    manifest = {
        "encoder_sha256": weights_sha256,
        "backend": "openvino",
        "backend_version": backend_version,
        "input_size": input_size,
        "precision": precision,
        "format": CACHE_FORMAT,
    }
    return CacheEntry(folder / key, manifest)


def verify_entry(entry: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """Check a cache entry's manifest and file hashes.

    An entry whose manifest records ``"model": false`` (a trial whose masks did
    not hold) has no model files; any other entry must have both, with their sha256.

    Args:
        entry: The entry's folder.
        expected: What its manifest must record (each key with this value).

    Returns:
        The manifest.

    Raises:
        ValueError: If the manifest is unreadable or records something else, or a model
            file is missing or does not match its sha256.
    """
    manifest_path = entry / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise ValueError("the manifest is not a JSON object")
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise ValueError(f"the manifest's {key} is {manifest.get(key)!r}, expected {value!r}")
    if manifest.get("model", True) is False:
        return manifest
    for name in (MODEL_XML, MODEL_BIN):
        if not (entry / name).is_file():
            raise ValueError(f"{name} is missing")
        if sha256_file(entry / name) != manifest.get("files", {}).get(name):
            raise ValueError(f"{name} does not match its recorded sha256")
    return manifest


def write_entry(entry: Path, ov_model: Any, ov: Any, manifest: dict[str, Any]) -> None:
    """Save a converted model under a temporary name, verify it, then rename it.

    Args:
        entry: The entry's folder; an older one there is replaced.
        ov_model: The OpenVINO model, or ``None`` to write only the manifest, with
            ``"model": false``.
        ov: The ``openvino`` module.
        manifest: What the manifest records (the file hashes are added).

    Raises:
        OSError: The entry could not be written; nothing is left under its name.
    """
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".part", dir=entry.parent))
    try:
        if ov_model is None:
            record = {**manifest, "model": False}
        else:
            ov.save_model(ov_model, str(tmp / MODEL_XML), compress_to_fp16=False)
            files = {name: sha256_file(tmp / name) for name in (MODEL_XML, MODEL_BIN)}
            record = {**manifest, "model": True, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(record, indent=1), encoding="utf-8")
        verify_entry(tmp, manifest)
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_entry(entry: CacheEntry) -> dict[str, Any] | None:
    """A verified cache entry's manifest, or ``None`` (a corrupted one is removed, warned of).

    Args:
        entry: The entry.

    Returns:
        Its manifest, or ``None`` when there is no entry or it was corrupted.
    """
    if not entry.path.exists():
        return None
    try:
        return verify_entry(entry.path, entry.manifest)
    except ValueError as exc:
        warn(
            f"fast=True: the cached encoder {entry.path} is corrupted ({exc}); converting "
            "the encoder again"
        )
        shutil.rmtree(entry.path, ignore_errors=True)
        return None


def save_entry(entry: Path, ov_model: Any, ov: Any, manifest: dict[str, Any]) -> None:
    """:func:`write_entry`, with a warning instead of an error when it cannot be written.

    Args:
        entry: The entry's folder.
        ov_model: The OpenVINO model, or ``None`` (a refused trial: the manifest only).
        ov: The ``openvino`` module.
        manifest: What the manifest records.
    """
    try:
        write_entry(entry, ov_model, ov, manifest)
    except OSError as exc:
        warn(
            f"fast=True: could not cache the converted encoder in {entry.parent} ({exc}); "
            "it will be converted again next time"
        )


def share_entries(source: Path, target: Path, weights_sha256: str) -> list[Path]:
    """Put the entries of one encoder in ``source`` into ``target`` too (hard links, or copies).

    For a checkpoint fine-tuned with a frozen image encoder: its cache folder gets its
    base's conversions, so that ``load_sam(checkpoint=..., fast=True)`` converts nothing.
    Each entry is linked under a temporary name, verified against its manifest, then
    renamed; an entry already in ``target`` is kept. A cache is never worth an error:
    what cannot be shared is warned of and converted on first use.

    Args:
        source: The base checkpoint's cache folder.
        target: The new checkpoint's cache folder.
        weights_sha256: The encoder weights' sha256 (:func:`encoder_sha256`).

    Returns:
        The entries made in ``target``.
    """
    if not source.is_dir() or source.resolve() == target.resolve():
        return []
    made = []
    for entry in sorted(source.glob(f"encoder-{weights_sha256[:20]}-*")):
        if not entry.is_dir() or entry.name.endswith(".part") or (target / entry.name).exists():
            continue
        try:
            made.append(_share_entry(entry, target / entry.name, weights_sha256))
        except (OSError, ValueError) as exc:
            warn(f"fast=True: could not share the cached encoder {entry} with {target} ({exc})")
    return made


def _share_entry(entry: Path, shared: Path, weights_sha256: str) -> Path:
    """One entry linked (or copied) to ``shared``, whole and verified, or not at all."""
    shared.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{shared.name}.", suffix=".part", dir=shared.parent))
    try:
        for file in entry.iterdir():
            try:
                os.link(file, tmp / file.name)
            except OSError:  # another file system, or no hard links there
                shutil.copy2(file, tmp / file.name)
        verify_entry(tmp, {"encoder_sha256": weights_sha256, "format": CACHE_FORMAT})
        os.replace(tmp, shared)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return shared
