"""The CPU encoder on OpenVINO: from the cache, or converted, measured and tried now, then cached.

The precisions tried come from :func:`~samkit.fast.cpu.precision_candidates`. A reduced
one (bfloat16, or int8: the float32 conversion quantized) is a trial. With
``SAMKIT_FAST_PRECISION=auto`` it is first timed against float32 on this machine (a few
runs of the compiled encoder) and kept only if it is at least :data:`MIN_SPEEDUP` times
faster; then its masks must hold (:mod:`samkit.fast.trial`). Of those kept, the fastest
is used. Each verdict (the times, the mask IoU, kept or not) is cached in the entry's
manifest, so the choice is made once per encoder (its weights), OpenVINO version and
instruction set, and a refused trial is not run again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from segment_anything.modeling import Sam

from samkit.env import fast_precision
from samkit.fast.cache import (
    MODEL_XML,
    CacheEntry,
    cache_dir_for,
    cache_entry,
    encoder_sha256,
    read_entry,
    save_entry,
)
from samkit.fast.cpu import cpu_threads, effective_isa, precision_candidates
from samkit.fast.info import FastInfo, warn
from samkit.fast.openvino import (
    OpenVINOImageEncoder,
    compile_config,
    convert_openvino,
    quantize_int8,
)
from samkit.fast.trial import (
    calibration_images,
    encoder_input,
    holds,
    mask_agreement,
    refusal,
)
from samkit.locks import locked

#: A reduced precision is kept only where the probe finds it at least this much faster
#: than float32 (an AVX2 CPU runs a bfloat16 hint in emulation, slower than float32).
MIN_SPEEDUP = 1.1
#: Where a kept bfloat16 is already this much faster than float32, int8 (2-3x where it
#: was measured) is not tried: its calibration would cost minutes for no gain.
ENOUGH_SPEEDUP = 2.5


def probe_seconds(compiled: Any, x: np.ndarray, precision: str) -> float:
    """How long a compiled encoder takes for one image: best of two runs after a warm-up.

    Args:
        compiled: The compiled OpenVINO encoder.
        x: One preprocessed image, shape ``(1, 3, S, S)``, float32.
        precision: What ``compiled`` runs in (``"f32"``, ``"bf16"`` or ``"int8"``).

    Returns:
        Seconds.
    """
    del precision  # the same measurement for every precision
    request = compiled.create_infer_request()
    request.infer({0: x})
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        request.infer({0: x})
        best = min(best, time.perf_counter() - start)
    return best


def speedup(record: dict[str, Any]) -> float:
    """float32 time / this precision's time, from a verdict (``nan`` if it was not timed)."""
    seconds = record.get("probe_seconds") or {}
    if "f32" not in seconds or record["precision"] not in seconds:
        return float("nan")
    return float(seconds["f32"]) / max(float(seconds[record["precision"]]), 1e-9)


@dataclass
class _Build:
    """One call of :func:`openvino_encoder`: what it works on, and what it found so far.

    Attributes:
        sam: The model.
        core: An ``openvino.Core``.
        ov: The ``openvino`` module.
        weights_sha256: The image encoder weights' sha256 (it keys the cache).
        folder: The cache folder.
        hit: Whether everything came from the cache so far.
        converted: The float32 conversion, once this call has made one.
        mask_iou: The mean mask IoU of a reduced-precision trial (run now, or cached).
        note: What ``FastInfo.detail`` adds about the reduced precisions.
        measure: Whether reduced precisions are timed against float32 (``auto``).
        f32_seconds: The float32 encoder's probe time, once measured.
    """

    sam: Sam
    core: Any
    ov: Any
    weights_sha256: str
    folder: Path
    hit: bool = True
    converted: Any = None
    mask_iou: float | None = None
    note: str = ""
    measure: bool = False
    f32_seconds: float | None = field(default=None, repr=False)

    @property
    def input_size(self) -> int:
        """The encoder's input side in pixels."""
        return int(self.sam.image_encoder.img_size)

    def entry(self, precision: str) -> CacheEntry:
        """The cache entry of this encoder in ``precision``."""
        version = self.ov.__version__
        return cache_entry(
            self.folder,
            self.weights_sha256,
            f"{version}-{effective_isa()}",
            self.input_size,
            precision,
        )

    def convert(self) -> Any:
        """The float32 conversion, made once per call (it says so: it takes a while)."""
        if self.converted is None:
            print(
                "samkit: convirtiendo el encoder de imágenes a OpenVINO (solo esta vez: "
                f"queda guardado en {self.folder}); puede tardar unos minutos"
            )
            self.converted = convert_openvino(self.sam.image_encoder, self.input_size, self.ov)
        return self.converted

    def seconds(self, compiled: Any, precision: str) -> float:
        """The probe time of ``compiled`` on one calibration image."""
        x = encoder_input(self.sam, calibration_images()[1][0]).numpy()
        return probe_seconds(compiled, x, precision)

    def float32_seconds(self) -> float:
        """The float32 encoder's probe time, measured once per call."""
        if self.f32_seconds is None:
            self.f32_seconds = self.seconds(self.compile(self.convert(), "f32"), "f32")
        return self.f32_seconds

    def compile(self, ov_model: Any, precision: str) -> Any:
        """``ov_model`` compiled for this CPU in ``precision``."""
        return self.core.compile_model(ov_model, "CPU", compile_config(precision))

    def read(self, entry: CacheEntry) -> Any:
        """The model of a verified cache entry."""
        return self.core.read_model(str(entry.path / MODEL_XML))


def _try_precision(build: _Build, entry: CacheEntry, precision: str) -> dict[str, Any]:
    """Convert, quantize (int8), compile, time (``auto``), try the masks; cache the verdict.

    Returns:
        The verdict (the entry's manifest); ``"compiled"`` is added when it is kept.
    """
    calibration, check = calibration_images()
    converted = build.convert()
    candidate = (
        quantize_int8(build.sam, converted, calibration)
        if precision == "int8"
        else converted  # bfloat16 is a property of the compiled model
    )
    trial = build.compile(candidate, precision)
    verdict: dict[str, Any] = {**entry.manifest, "mask_iou_mean": None, "mask_iou_min": None}
    keep = True
    if build.measure:
        verdict["probe_seconds"] = {
            "f32": build.float32_seconds(),
            precision: build.seconds(trial, precision),
        }
        keep = speedup(verdict) >= MIN_SPEEDUP
    if keep:
        trial_encoder = OpenVINOImageEncoder(
            trial, build.input_size, FastInfo("openvino", precision, "trial")
        )
        mask_iou, lowest = mask_agreement(build.sam, trial_encoder, check)
        verdict.update(mask_iou_mean=mask_iou, mask_iou_min=lowest)
        keep = holds(mask_iou)
    save_entry(entry.path, candidate if keep else None, build.ov, verdict)
    return {**verdict, "model": keep, **({"compiled": trial} if keep else {})}


def _trial(build: _Build, entry: CacheEntry, precision: str) -> dict[str, Any] | None:
    """:func:`_try_precision`; a failure (NNCF missing, an error) is warned of, not raised.

    Returns:
        The verdict, or ``None`` when the trial failed.
    """
    build.convert()  # a failed conversion fails the whole backend, not only the trial
    try:
        return _try_precision(build, entry, precision)
    except Exception as exc:
        reason = " ".join(str(exc).split())
        why = (
            f"NNCF is not installed ({reason}; pip install openvino nncf adds it)"
            if isinstance(exc, ImportError)
            else f"the {precision} trial failed ({type(exc).__name__}: {reason})"
        )
        warn(f"fast=True: {why}; using the float32 OpenVINO encoder instead")
        build.note += f"; {precision} not used: {why}"
        return None


def _verdict(build: _Build, precision: str) -> dict[str, Any] | None:
    """The verdict on ``precision``: cached, or tried now (see :func:`_try_precision`).

    A cached verdict without times is tried again when times are wanted (``auto``).

    Returns:
        The verdict, or ``None`` when its trial failed.
    """
    entry = build.entry(precision)
    record = read_entry(entry)
    if record is not None and (not build.measure or "probe_seconds" in record):
        return record
    build.hit = False
    return _trial(build, entry, precision)


def _describe(precision: str, record: dict[str, Any]) -> str:
    """What ``FastInfo.detail`` says about one verdict, starting ``"; "``."""
    times = record.get("probe_seconds")
    pace = ""
    if times:
        pace = f", {times[precision]:.2f} s against {times['f32']:.2f} s in f32"
    if record.get("mask_iou_mean") is None:
        return f"; {precision} refused: not faster than f32 here{pace}"
    if not record["model"]:
        return refusal(precision, float(record["mask_iou_mean"])) + pace
    return f"; {precision} masks match float32 with mean IoU {record['mask_iou_mean']:.4f}{pace}"


def _reduced(build: _Build, candidates: tuple[str, ...]) -> tuple[str, Any] | None:
    """The fastest kept reduced precision and its compiled model, if any is kept.

    Returns:
        ``(precision, compiled model)``, or ``None``: float32 is to be used.
    """
    kept: list[dict[str, Any]] = []
    for precision in candidates:
        if precision == "int8" and any(speedup(r) >= ENOUGH_SPEEDUP for r in kept):
            build.note += f"; int8 not tried: bf16 is {speedup(kept[0]):.1f}x faster than f32"
            continue
        record = _verdict(build, precision)
        if record is None:
            continue
        build.note += _describe(precision, record)
        if record.get("mask_iou_mean") is not None:
            build.mask_iou = float(record["mask_iou_mean"])
        if record["model"]:
            kept.append(record)
    if not kept:
        return None
    best = min(kept, key=lambda r: -speedup(r) if build.measure else 0.0)
    build.mask_iou = float(best["mask_iou_mean"])
    precision = str(best["precision"])
    compiled = best.get("compiled")
    if compiled is None:
        compiled = build.compile(build.read(build.entry(precision)), precision)
    return precision, compiled


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


@contextlib.contextmanager
def _one_at_a_time(build: _Build) -> Iterator[None]:
    """One conversion of an encoder at a time: another process waits, then reads the cache.

    Two notebooks or two workers of a run that load the same model at once would
    otherwise each convert it (minutes for vit_h). Where the cache folder cannot be
    written, nothing is locked.
    """

    def say() -> None:
        print(
            "samkit: otro proceso está convirtiendo este encoder; espero a que termine "
            "para usar su resultado"
        )

    lock = contextlib.ExitStack()
    with contextlib.suppress(OSError):
        build.folder.mkdir(parents=True, exist_ok=True)
        name = f"encoder-{build.weights_sha256[:20]}.lock"
        lock.enter_context(locked(build.folder / name, on_wait=say))
    with lock:
        yield


def openvino_encoder(sam: Sam, checkpoint: Path, ov: Any) -> OpenVINOImageEncoder:
    """The converted encoder, from the cache or converted now (and then cached).

    Args:
        sam: The model, on the CPU, with its PyTorch image encoder.
        checkpoint: The weights file it was loaded from (the cache is beside it); the
            image encoder's own weights key the cache (``encoder_sha256``).
        ov: The ``openvino`` module.

    Returns:
        The encoder; its ``fast_info`` says which precision, and why.

    Raises:
        RuntimeError: OpenVINO sees no CPU device.
        ValueError: ``SAMKIT_FAST_PRECISION`` is not one of its values.
    """
    start = time.perf_counter()
    candidates = precision_candidates()
    core = ov.Core()
    if "CPU" not in core.available_devices:
        raise RuntimeError(f"OpenVINO sees no CPU device (it sees {core.available_devices})")
    weights = encoder_sha256(sam.image_encoder)
    build = _Build(sam, core, ov, weights, cache_dir_for(checkpoint))
    build.measure = fast_precision() == "auto"
    with _one_at_a_time(build):
        chosen = _reduced(build, candidates)
        precision, compiled = chosen if chosen is not None else ("f32", None)
        if compiled is None:
            compiled = _float32(build)
    info = FastInfo(
        backend="openvino",
        precision=precision,
        detail=(
            f"OpenVINO {ov.__version__} on CPU ({effective_isa()}), {precision}, latency "
            f"hint, {cpu_threads()} threads; cache {build.entry(precision).path}{build.note}"
        ),
        cache_hit=build.hit,
        seconds=time.perf_counter() - start,
        mask_iou=build.mask_iou,
    )
    return OpenVINOImageEncoder(compiled, build.input_size, info)
