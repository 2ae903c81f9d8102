"""The CPU encoder on OpenVINO: from the cache, or converted (and tried) now, then cached.

The precision comes from :func:`~samkit.fast.cpu.choose_precision`. A reduced one
(bfloat16, or int8: the float32 conversion quantized) is a trial: it is kept only if its
masks hold (:mod:`samkit.fast.trial`). The verdict is cached too, so a refused trial is
not run again, and float32 is used instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segment_anything.modeling import Sam

from samkit.fast.cache import (
    MODEL_XML,
    CacheEntry,
    cache_dir_for,
    cache_entry,
    read_entry,
    save_entry,
)
from samkit.fast.cpu import choose_precision, cpu_threads
from samkit.fast.info import FastInfo, warn
from samkit.fast.openvino import (
    OpenVINOImageEncoder,
    compile_config,
    convert_openvino,
    quantize_int8,
)
from samkit.fast.trial import calibration_images, holds, mask_agreement, refusal
from samkit.files import sha256_file


@dataclass
class _Build:
    """One call of :func:`openvino_encoder`: what it works on, and what it found so far.

    Attributes:
        sam: The model.
        core: An ``openvino.Core``.
        ov: The ``openvino`` module.
        checkpoint_sha256: The weights file's sha256 (it keys the cache).
        folder: The cache folder.
        hit: Whether everything came from the cache so far.
        converted: The float32 conversion, once this call has made one.
        mask_iou: The mean mask IoU of a reduced-precision trial (run now, or cached).
        note: What ``FastInfo.detail`` adds about the reduced precision.
    """

    sam: Sam
    core: Any
    ov: Any
    checkpoint_sha256: str
    folder: Path
    hit: bool = True
    converted: Any = None
    mask_iou: float | None = None
    note: str = ""

    @property
    def input_size(self) -> int:
        """The encoder's input side in pixels."""
        return int(self.sam.image_encoder.img_size)

    def entry(self, precision: str) -> CacheEntry:
        """The cache entry of this encoder in ``precision``."""
        version = self.ov.__version__
        return cache_entry(self.folder, self.checkpoint_sha256, version, self.input_size, precision)

    def convert(self) -> Any:
        """The float32 conversion, made once per call."""
        if self.converted is None:
            self.converted = convert_openvino(self.sam.image_encoder, self.input_size, self.ov)
        return self.converted

    def compile(self, ov_model: Any, precision: str) -> Any:
        """``ov_model`` compiled for this CPU in ``precision``."""
        return self.core.compile_model(ov_model, "CPU", compile_config(precision))

    def read(self, entry: CacheEntry) -> Any:
        """The model of a verified cache entry."""
        return self.core.read_model(str(entry.path / MODEL_XML))


def _try_precision(build: _Build, entry: CacheEntry, precision: str) -> Any | None:
    """Convert, quantize (int8) and compile; keep it if its masks hold; cache the verdict.

    Returns:
        The compiled model, or ``None`` when its masks did not hold.
    """
    calibration, check = calibration_images()
    converted = build.convert()
    candidate = (
        quantize_int8(build.sam, converted, calibration)
        if precision == "int8"
        else converted  # bfloat16 is a property of the compiled model
    )
    trial = build.compile(candidate, precision)
    trial_encoder = OpenVINOImageEncoder(
        trial, build.input_size, FastInfo("openvino", precision, "trial")
    )
    mask_iou, lowest = mask_agreement(build.sam, trial_encoder, check)
    build.mask_iou = mask_iou
    keep = holds(mask_iou)
    verdict = {**entry.manifest, "mask_iou_mean": mask_iou, "mask_iou_min": lowest}
    save_entry(entry.path, candidate if keep else None, build.ov, verdict)
    return trial if keep else None


def _trial(build: _Build, entry: CacheEntry, precision: str) -> Any | None:
    """:func:`_try_precision`; a failure (NNCF missing, an error) is warned of, not raised.

    Returns:
        The compiled model, or ``None`` when it was refused or failed.
    """
    build.convert()  # a failed conversion fails the whole backend, not only the trial
    try:
        return _try_precision(build, entry, precision)
    except Exception as exc:
        reason = " ".join(str(exc).split())
        why = (
            f"NNCF is not installed ({reason}; pip install 'samkit[fast]' adds it)"
            if isinstance(exc, ImportError)
            else f"the {precision} trial failed ({type(exc).__name__}: {reason})"
        )
        warn(f"fast=True: {why}; using the float32 OpenVINO encoder instead")
        build.note = f"; {precision} not used: {why}"
        return None


def _reduced(build: _Build, precision: str) -> Any | None:
    """The encoder compiled in ``precision`` (``"int8"`` or ``"bf16"``), if it is kept.

    Returns:
        The compiled model, or ``None``: float32 is to be used.
    """
    entry = build.entry(precision)
    record = read_entry(entry)
    if record is not None:
        build.mask_iou = float(record["mask_iou_mean"])
        compiled = build.compile(build.read(entry), precision) if record["model"] else None
    else:
        build.hit = False
        compiled = _trial(build, entry, precision)
    if compiled is not None:
        build.note = f"; {precision} masks match float32 with mean IoU {build.mask_iou:.4f}"
    elif build.mask_iou is not None:
        build.note = refusal(precision, build.mask_iou)
    return compiled


def _float32(build: _Build) -> Any:
    """The encoder compiled in float32, from the cache or converted now (and cached)."""
    entry = build.entry("f32")
    if read_entry(entry) is not None:
        ov_model = build.read(entry)
    else:
        build.hit = False
        ov_model = build.convert()
        save_entry(entry.path, ov_model, build.ov, entry.manifest)
    return build.compile(ov_model, "f32")


def openvino_encoder(sam: Sam, checkpoint: Path, ov: Any) -> OpenVINOImageEncoder:
    """The converted encoder, from the cache or converted now (and then cached).

    Args:
        sam: The model, on the CPU, with its PyTorch image encoder.
        checkpoint: The weights file it was loaded from (its sha256 keys the cache).
        ov: The ``openvino`` module.

    Returns:
        The encoder; its ``fast_info`` says which precision, and why.

    Raises:
        RuntimeError: OpenVINO sees no CPU device.
        ValueError: ``SAMKIT_FAST_PRECISION`` is not one of its values.
    """
    start = time.perf_counter()
    precision = choose_precision()
    core = ov.Core()
    if "CPU" not in core.available_devices:
        raise RuntimeError(f"OpenVINO sees no CPU device (it sees {core.available_devices})")
    build = _Build(sam, core, ov, sha256_file(checkpoint), cache_dir_for(checkpoint))
    compiled = _reduced(build, precision) if precision in ("int8", "bf16") else None
    if compiled is None:
        precision = "f32"
        compiled = _float32(build)
    info = FastInfo(
        backend="openvino",
        precision=precision,
        detail=(
            f"OpenVINO {ov.__version__} on CPU, {precision}, latency hint, "
            f"{cpu_threads()} threads; cache {build.entry(precision).path}{build.note}"
        ),
        cache_hit=build.hit,
        seconds=time.perf_counter() - start,
        mask_iou=build.mask_iou,
    )
    return OpenVINOImageEncoder(compiled, build.input_size, info)
