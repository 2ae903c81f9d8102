"""The fast path: SAM's image encoder on the fastest backend this machine has.

``accelerate(sam, checkpoint)`` (what ``samkit.load_sam(..., fast=True)`` calls) swaps
``sam.image_encoder`` for one that computes the same embedding faster, so the stock
``SamPredictor`` and ``SamAutomaticMaskGenerator`` work unchanged:

- on a CPU, the encoder is converted once to OpenVINO, and the converted model is
  cached on disk next to the weights, keyed by the checkpoint's sha256, OpenVINO's
  version, the input size and the precision. Where the CPU computes bfloat16 natively
  (AMX or AVX512-BF16, confirmed by a probe), it is compiled for bfloat16; else, where
  it reports native int8 dot products (VNNI), it is quantized to int8 with NNCF,
  calibrated on the bundled images. Either is a trial, kept only if its masks match the
  PyTorch encoder's (mean IoU at least :data:`MIN_MASK_IOU` on images and prompts it
  was not calibrated on); otherwise it runs in float32, the same embedding to about
  1e-6 (see :func:`choose_precision`);
- on a CUDA GPU, the encoder runs under float16 autocast with its attention rewritten
  as one fused ``scaled_dot_product_attention`` (relative positions as its mask)
  (nothing is converted, nothing is cached);
- anywhere else, or when the backend is missing or fails, one
  :class:`FastBackendWarning` says why and the plain PyTorch encoder is kept.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from segment_anything.modeling.image_encoder import Attention, get_rel_pos

#: Bumped when the layout of a cache entry or the conversion changes.
CACHE_FORMAT = 2
#: The least mean mask IoU (a bfloat16 or int8 encoder against the PyTorch one) for that
#: precision to be kept.
MIN_MASK_IOU = 0.98
#: The folder, inside a weights directory, that holds converted encoders.
CACHE_DIRNAME = "fast-cache"
_MODEL_XML = "encoder.xml"
_MODEL_BIN = "encoder.bin"
_MANIFEST = "manifest.json"


class FastBackendWarning(UserWarning):
    """The fast backend is missing or failed; the plain PyTorch encoder is used instead."""


@dataclass(frozen=True)
class FastInfo:
    """What :func:`accelerate` did, kept on the encoder as ``sam.image_encoder.fast_info``.

    Attributes:
        backend: ``"openvino"``, ``"cuda-autocast"`` or ``"torch"`` (the fallback).
        precision: ``"f32"``, ``"int8"``, ``"bf16"`` or ``"f16"``.
        detail: A human-readable line: version, threads, cache entry, why it fell back.
        cache_hit: Whether the converted encoder came from the on-disk cache.
        seconds: How long preparing the encoder took (conversion or cache load).
        mask_iou: For a bfloat16 or int8 trial, the mean mask IoU it reached against the
            PyTorch encoder (kept when at least :data:`MIN_MASK_IOU`), else ``None``.
    """

    backend: str
    precision: str
    detail: str
    cache_hit: bool = False
    seconds: float = 0.0
    mask_iou: float | None = None


# --------------------------------------------------------------------------- attention


def _sdpa_attention_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """segment-anything's ``Attention.forward`` through one fused SDPA call.

    The decomposed relative positions are added to the logits by stock SAM after the
    ``q @ k^T`` product; here they become SDPA's additive mask (the same sum), so the
    result is the same up to float rounding.

    Args:
        self: The attention module.
        x: The tokens, shape ``(B, H, W, C)``.

    Returns:
        The attended tokens, shape ``(B, H, W, C)``.
    """
    b, h, w, _ = x.shape
    qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # each (B, heads, H*W, head_dim)
    mask = None
    if self.use_rel_pos:
        dim = q.shape[-1]
        rel_h_table = get_rel_pos(h, h, self.rel_pos_h)  # (H, H, head_dim)
        rel_w_table = get_rel_pos(w, w, self.rel_pos_w)  # (W, W, head_dim)
        r_q = q.reshape(b * self.num_heads, h, w, dim)
        rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rel_h_table)
        rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rel_w_table)
        mask = (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(
            b, self.num_heads, h * w, h * w
        )
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
    out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
    result: torch.Tensor = self.proj(out)
    return result


def use_sdpa_attention(encoder: torch.nn.Module) -> int:
    """Route every attention block of an image encoder through fused SDPA (in place).

    Args:
        encoder: A ``segment_anything`` ``ImageEncoderViT``.

    Returns:
        The number of attention blocks rewritten.
    """
    count = 0
    for module in encoder.modules():
        if isinstance(module, Attention):
            module.forward = types.MethodType(_sdpa_attention_forward, module)
            count += 1
    return count


def _restore_attention(encoder: torch.nn.Module) -> None:
    """Undo :func:`use_sdpa_attention` (drop the per-instance ``forward``)."""
    for module in encoder.modules():
        if isinstance(module, Attention) and "forward" in vars(module):
            del module.forward


# --------------------------------------------------------------------------- machine


def cpu_threads() -> int:
    """The number of CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _cpu_flags() -> str:
    """The text of ``/proc/cpuinfo`` (empty off Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def cpu_reports_native_int8() -> bool:
    """Whether the CPU reports native int8 dot products (AVX512-VNNI, AVX-VNNI or AMX-INT8).

    There an int8 encoder runs about twice as fast as a float32 one. Off Linux, where
    the flags cannot be read, ``False``.
    """
    return bool(re.search(r"\b(avx512_vnni|avx_vnni|amx_int8)\b", _cpu_flags()))


@functools.cache
def cpu_reports_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 matrix products natively (AVX512-BF16 or AMX).

    It takes both: the CPU's own flags (or oneDNN's check, off Linux), and a probe in
    which a bfloat16 product is at least twice as fast as a float32 one (a CPU that
    only emulates bfloat16 is many times slower).

    Answered once per process, so that every load in it picks the same cache entry.

    Returns:
        ``True`` only when both agree.
    """
    flags = _cpu_flags()
    if flags:
        if not re.search(r"\b(avx512_bf16|amx_bf16)\b", flags):
            return False
    else:
        try:
            if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
                return False
        except (AttributeError, RuntimeError):
            return False
    # A CPU that emulates bfloat16 is many times slower, never near 2x faster: a busy
    # moment (another thread pool still spinning) can only make a native one look slower,
    # so one good round of three is enough.
    return any(_bf16_probe_speedup() >= 2.0 for _ in range(3))


def _bf16_probe_speedup() -> float:
    """float32 time / bfloat16 time of a 768x768 product (best of five, ~50 ms in all).

    Large enough that the timer's noise does not decide: a CPU with native bfloat16 gives
    3-7 here, one that emulates it far under 1.
    """
    times = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.ones(768, 768, dtype=dtype)
        a @ a
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - start)
        times[dtype] = best
    return times[torch.float32] / max(times[torch.bfloat16], 1e-9)


def choose_precision() -> str:
    """The precision the converted CPU encoder is tried in, from ``SAMKIT_FAST_PRECISION``.

    - ``auto`` (the default): ``"bf16"`` where :func:`cpu_reports_native_bf16`, else
      ``"int8"`` where :func:`cpu_reports_native_int8`, else ``"f32"``;
    - ``bf16``: ``"bf16"`` only where :func:`cpu_reports_native_bf16`, else ``"f32"``;
    - ``int8``: ``"int8"`` on any CPU;
    - ``f32``: ``"f32"``, the same embedding as stock SAM to about 1e-6.

    bfloat16 moves the embedding by about 1e-2, int8 by about 2e-2: either is kept only
    if its masks hold (see :func:`accelerate`).

    Returns:
        ``"f32"``, ``"int8"`` or ``"bf16"``.

    Raises:
        ValueError: If ``SAMKIT_FAST_PRECISION`` is set to something else.
    """
    from samkit import env

    wanted = env.fast_precision()
    if wanted == "auto":
        if cpu_reports_native_bf16():
            return "bf16"
        return "int8" if cpu_reports_native_int8() else "f32"
    if wanted == "bf16":
        return "bf16" if cpu_reports_native_bf16() else "f32"
    return wanted


# --------------------------------------------------------------------------- cache


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


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
    from samkit import locations

    path = Path(checkpoint).resolve()
    bundled = path.is_relative_to(locations.data_dir().resolve())
    if not bundled and os.access(path.parent, os.W_OK):
        return path.parent / CACHE_DIRNAME
    return locations.weights_dir() / CACHE_DIRNAME


def cache_key(checkpoint_sha256: str, backend_version: str, input_size: int, precision: str) -> str:
    """The name of a cache entry: checkpoint, backend version, input size, precision.

    Args:
        checkpoint_sha256: The weights file's hex sha256.
        backend_version: The backend's version string (``openvino.__version__``).
        input_size: The encoder's input side in pixels (1024 for the official models).
        precision: ``"f32"``, ``"int8"`` or ``"bf16"``.

    Returns:
        A file-name-safe key.
    """
    version = re.sub(r"[^A-Za-z0-9.]+", "_", backend_version)[:40]
    return (
        f"encoder-{checkpoint_sha256[:20]}-openvino{version}-{input_size}px-{precision}"
        f"-v{CACHE_FORMAT}"
    )


def _verify_entry(entry: Path, expected: dict[str, Any]) -> dict[str, Any]:
    """Check a cache entry's manifest and file hashes; raise ``ValueError`` if wrong.

    An entry whose manifest records ``"model": false`` (a trial whose masks did
    not hold) has no model files; any other entry must have both, with their sha256.

    Returns:
        The manifest.
    """
    manifest_path = entry / _MANIFEST
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
    for name in (_MODEL_XML, _MODEL_BIN):
        if not (entry / name).is_file():
            raise ValueError(f"{name} is missing")
        if sha256_file(entry / name) != manifest.get("files", {}).get(name):
            raise ValueError(f"{name} does not match its recorded sha256")
    return manifest


def _write_entry(entry: Path, ov_model: Any, ov: Any, manifest: dict[str, Any]) -> None:
    """Save a converted model under a temporary name, verify it, then rename it.

    With ``ov_model=None``, only the manifest is written (``"model": false``).
    """
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".part", dir=entry.parent))
    try:
        if ov_model is None:
            record = {**manifest, "model": False}
        else:
            ov.save_model(ov_model, str(tmp / _MODEL_XML), compress_to_fp16=False)
            files = {name: sha256_file(tmp / name) for name in (_MODEL_XML, _MODEL_BIN)}
            record = {**manifest, "model": True, "files": files}
        (tmp / _MANIFEST).write_text(json.dumps(record, indent=1), encoding="utf-8")
        _verify_entry(tmp, manifest)
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- reduced precision


def calibration_images() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The images an int8 encoder is calibrated on, and those a trial's masks are checked on.

    Calibration: the bundled photos and three generated scenes. Check: images it was not
    calibrated on, a photo mirrored left to right and a new scene.

    Returns:
        ``(calibration, check)``, RGB ``uint8`` arrays of shape ``(H, W, 3)``.
    """
    from PIL import Image

    from samkit import locations, shapes

    photos = []
    for path in sorted((locations.data_dir() / "images").glob("*.png")):
        with Image.open(path) as image:
            photos.append(np.asarray(image.convert("RGB")))
    scenes = [shapes.make_scene(seed, 480, 640).image for seed in range(3)]
    check = [np.ascontiguousarray(photos[0][:, ::-1]) if photos else scenes[0][:, ::-1]]
    check.append(shapes.make_scene(1000, 480, 640).image)
    return photos + scenes, check


def _encoder_input(sam: Sam, image: np.ndarray) -> torch.Tensor:
    """An RGB image as the encoder sees it: resized, normalized, padded, ``(1, 3, S, S)``."""
    from segment_anything.utils.transforms import ResizeLongestSide

    resized = ResizeLongestSide(int(sam.image_encoder.img_size)).apply_image(image)
    x = torch.as_tensor(resized).permute(2, 0, 1)[None].float()
    return sam.preprocess(x.to(sam.device)).cpu()


def _check_prompts(size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 4 x 4 grid of points and five boxes over an image of ``size`` (input frame)."""
    h, w = size
    ys, xs = np.meshgrid((np.arange(4) + 0.5) * h / 4, (np.arange(4) + 0.5) * w / 4)
    points = torch.as_tensor(np.stack([xs.ravel(), ys.ravel()], axis=1), dtype=torch.float32)
    boxes = torch.tensor(
        [
            [0, 0, w / 2, h / 2],
            [w / 2, 0, w, h / 2],
            [0, h / 2, w / 2, h],
            [w / 2, h / 2, w, h],
            [w / 4, h / 4, 3 * w / 4, 3 * h / 4],
        ],
        dtype=torch.float32,
    )
    return points[:, None, :], torch.ones(len(points), 1, dtype=torch.int64), boxes


def _decoded_masks(sam: Sam, embedding: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The three candidate masks of each check prompt, at the input size, ``bool``."""
    points, labels, boxes = _check_prompts(size)
    found = []
    for prompt in ({"points": (points, labels)}, {"boxes": boxes}):
        sparse, dense = sam.prompt_encoder(
            points=prompt.get("points"), boxes=prompt.get("boxes"), masks=None
        )
        low, _ = sam.mask_decoder(
            image_embeddings=embedding,
            image_pe=sam.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
        )
        side = int(sam.image_encoder.img_size)
        up = F.interpolate(low, (side, side), mode="bilinear", align_corners=False)
        found.append(up[..., : size[0], : size[1]] > sam.mask_threshold)
    return torch.cat(found).flatten(0, 1)


def mask_agreement(
    sam: Sam, encode: Callable[[torch.Tensor], torch.Tensor], images: list[np.ndarray]
) -> tuple[float, float]:
    """How well masks from another encoder match those from ``sam``'s own encoder.

    Each image gets 16 point prompts and 5 box prompts; each prompt's three candidate
    masks are compared by IoU (two empty masks agree).

    Args:
        sam: The model, with its PyTorch image encoder.
        encode: The other encoder (``(1, 3, S, S)`` -> embedding).
        images: RGB images.

    Returns:
        ``(mean IoU, lowest IoU)`` over every mask.
    """
    ious = []
    with torch.inference_mode():
        for image in images:
            x = _encoder_input(sam, image)
            scale = int(sam.image_encoder.img_size) / max(image.shape[:2])
            size = (int(image.shape[0] * scale + 0.5), int(image.shape[1] * scale + 0.5))
            ours = _decoded_masks(sam, sam.image_encoder(x.to(sam.device)), size)
            theirs = _decoded_masks(sam, encode(x).to(sam.device), size)
            inter = (ours & theirs).flatten(1).sum(1).double()
            union = (ours | theirs).flatten(1).sum(1).double()
            ious.append(torch.where(union > 0, inter / union.clamp(min=1), 1.0))
    every = torch.cat(ious)
    return float(every.mean()), float(every.min())


def _quantize_int8(sam: Sam, ov_model: Any, images: list[np.ndarray]) -> Any:
    """An int8 copy of a converted encoder (NNCF post-training quantization), quietly.

    Calibrated on ``images``; the neck's convolutions stay in float32 and SmoothQuant is
    off (both kept the masks closer to the float32 ones).
    """
    import contextlib
    import io
    import logging

    import nncf

    data = nncf.Dataset([_encoder_input(sam, image).numpy() for image in images])
    neck = [
        op.get_friendly_name()
        for op in ov_model.get_ordered_ops()
        if op.get_type_name() == "Convolution" and "neck" in op.get_friendly_name()
    ]
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return nncf.quantize(
                ov_model,
                data,
                preset=nncf.QuantizationPreset.MIXED,
                model_type=nncf.ModelType.TRANSFORMER,
                subset_size=len(images),
                ignored_scope=nncf.IgnoredScope(names=neck, validate=False),
                advanced_parameters=nncf.AdvancedQuantizationParameters(
                    smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=-1)
                ),
            )
    finally:
        logger.setLevel(level)


# --------------------------------------------------------------------------- encoders


class OpenVINOImageEncoder(torch.nn.Module):
    """A compiled OpenVINO image encoder with the interface of ``ImageEncoderViT``.

    Attributes:
        img_size: The input side in pixels, read by ``Sam.preprocess``.
        fast_info: What was compiled and how (:class:`FastInfo`).
    """

    def __init__(self, compiled: Any, img_size: int, fast_info: FastInfo) -> None:
        super().__init__()
        self.img_size = img_size
        self.fast_info = fast_info
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._out_shape = tuple(int(d) for d in compiled.output(0).get_partial_shape().to_shape())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a batch of preprocessed images.

        Args:
            x: Float images, shape ``(B, 3, img_size, img_size)``.

        Returns:
            The embeddings, shape ``(B, C, img_size / 16, img_size / 16)``, float32, on
            ``x``'s device.
        """
        expected = (3, self.img_size, self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"the image encoder expects images of shape (B, {', '.join(map(str, expected))})"
                f", but got {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            return torch.empty((0, *self._out_shape[1:]), device=x.device)
        outs = []
        for image in x.detach().to("cpu", torch.float32):
            array = np.ascontiguousarray(image[None].numpy())
            self._request.infer({0: array})
            outs.append(torch.from_numpy(self._request.get_output_tensor(0).data.copy()))
        return torch.cat(outs).to(x.device)


def _autocast_forward(
    original: Callable[[torch.Tensor], torch.Tensor], device_type: str, dtype: torch.dtype
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap an encoder's ``forward`` in autocast, returning float32."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, dtype=dtype):
            out = original(x)
        return out.float()

    return forward


def _convert_openvino(encoder: torch.nn.Module, input_size: int, ov: Any) -> Any:
    """Convert an image encoder to an OpenVINO model with a fixed input shape.

    The stock attention is traced as it is: OpenVINO fuses it well by itself, while a
    fused SDPA call with the relative positions as an explicit mask ran slower there.
    """
    example = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notices about shape-dependent Python
        return ov.convert_model(
            encoder, example_input=example, input=[(1, 3, input_size, input_size)]
        )


def _compile_config(precision: str) -> dict[str, Any]:
    """OpenVINO CPU properties: one low-latency stream on every core, fixed precision.

    An int8 model's quantized operations run in int8 whatever the hint; the rest of it
    runs in float32.
    """
    return {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": cpu_threads(),
        "INFERENCE_PRECISION_HINT": "f32" if precision == "int8" else precision,
    }


def _read_entry(entry: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """A verified cache entry's manifest, or ``None`` (a corrupted one is removed, warned of)."""
    if not entry.exists():
        return None
    try:
        return _verify_entry(entry, manifest)
    except ValueError as exc:
        warnings.warn(
            f"fast=True: the cached encoder {entry} is corrupted ({exc}); converting "
            "the encoder again",
            FastBackendWarning,
            stacklevel=5,
        )
        shutil.rmtree(entry, ignore_errors=True)
        return None


def _save_entry(entry: Path, ov_model: Any, ov: Any, manifest: dict[str, Any]) -> None:
    """:func:`_write_entry`, with a warning instead of an error when it cannot be written."""
    try:
        _write_entry(entry, ov_model, ov, manifest)
    except OSError as exc:
        warnings.warn(
            f"fast=True: could not cache the converted encoder in {entry.parent} ({exc}); "
            "it will be converted again next time",
            FastBackendWarning,
            stacklevel=5,
        )


def _openvino_encoder(sam: Sam, checkpoint: Path, ov: Any) -> OpenVINOImageEncoder:
    """The converted encoder, from the cache or converted now (and then cached).

    A reduced precision (bfloat16, or int8: the float32 conversion quantized) is a
    trial: it is kept only if its masks hold (:data:`MIN_MASK_IOU`). The verdict is
    cached too, so a refused trial is not run again, and float32 is used instead.
    """
    start = time.perf_counter()
    input_size = int(sam.image_encoder.img_size)
    precision = choose_precision()
    core = ov.Core()
    if "CPU" not in core.available_devices:
        raise RuntimeError(f"OpenVINO sees no CPU device (it sees {core.available_devices})")
    checkpoint_sha = sha256_file(checkpoint)
    folder = cache_dir_for(checkpoint)

    def entry_for(wanted: str) -> tuple[Path, dict[str, Any]]:
        key = cache_key(checkpoint_sha, ov.__version__, input_size, wanted)
        manifest = {
            "checkpoint_sha256": checkpoint_sha,
            "backend": "openvino",
            "backend_version": ov.__version__,
            "input_size": input_size,
            "precision": wanted,
            "format": CACHE_FORMAT,
        }
        return folder / key, manifest

    hit = True
    converted = None  # the float32 conversion, when this call made one
    compiled = None
    mask_iou = None
    note = ""
    if precision in ("int8", "bf16"):
        entry, manifest = entry_for(precision)
        record = _read_entry(entry, manifest)
        if record is not None:
            mask_iou = float(record["mask_iou_mean"])
            if record["model"]:
                ov_model = core.read_model(str(entry / _MODEL_XML))
                compiled = core.compile_model(ov_model, "CPU", _compile_config(precision))
        else:
            hit = False
            converted = _convert_openvino(sam.image_encoder, input_size, ov)
            try:
                calibration, check = calibration_images()
                candidate = (
                    _quantize_int8(sam, converted, calibration)
                    if precision == "int8"
                    else converted  # bfloat16 is a property of the compiled model
                )
                trial = core.compile_model(candidate, "CPU", _compile_config(precision))
                trial_encoder = OpenVINOImageEncoder(
                    trial, input_size, FastInfo("openvino", precision, "trial")
                )
                mask_iou, lowest = mask_agreement(sam, trial_encoder, check)
                keep = mask_iou >= MIN_MASK_IOU
                verdict = {**manifest, "mask_iou_mean": mask_iou, "mask_iou_min": lowest}
                _save_entry(entry, candidate if keep else None, ov, verdict)
                compiled = trial if keep else None
            except Exception as exc:
                reason = " ".join(str(exc).split())
                why = (
                    f"NNCF is not installed ({reason}; pip install 'samkit[fast]' adds it)"
                    if isinstance(exc, ImportError)
                    else f"the {precision} trial failed ({type(exc).__name__}: {reason})"
                )
                warnings.warn(
                    f"fast=True: {why}; using the float32 OpenVINO encoder instead",
                    FastBackendWarning,
                    stacklevel=4,
                )
                note = f"; {precision} not used: {why}"
        if compiled is None:
            if mask_iou is not None:
                note = (
                    f"; {precision} refused: its masks matched with mean IoU {mask_iou:.4f} "
                    f"(at least {MIN_MASK_IOU} needed)"
                )
            precision = "f32"
    if compiled is None:
        entry, manifest = entry_for(precision)
        if _read_entry(entry, manifest) is not None:
            ov_model = core.read_model(str(entry / _MODEL_XML))
        else:
            hit = False
            ov_model = (
                converted
                if converted is not None
                else _convert_openvino(sam.image_encoder, input_size, ov)
            )
            _save_entry(entry, ov_model, ov, manifest)
        compiled = core.compile_model(ov_model, "CPU", _compile_config(precision))
    elif mask_iou is not None:
        note = f"; {precision} masks match float32 with mean IoU {mask_iou:.4f}"
    info = FastInfo(
        backend="openvino",
        precision=precision,
        detail=(
            f"OpenVINO {ov.__version__} on CPU, {precision}, latency hint, "
            f"{cpu_threads()} threads; cache {entry}{note}"
        ),
        cache_hit=hit,
        seconds=time.perf_counter() - start,
        mask_iou=mask_iou,
    )
    return OpenVINOImageEncoder(compiled, input_size, info)


def _fallback(sam: Sam, why: str) -> Sam:
    """Warn once with the reason and keep the plain PyTorch encoder."""
    warnings.warn(
        f"fast=True: {why}; using the plain PyTorch image encoder instead",
        FastBackendWarning,
        stacklevel=3,
    )
    sam.image_encoder.fast_info = FastInfo("torch", "f32", why)
    return sam


def accelerate(sam: Sam, checkpoint: str | os.PathLike[str]) -> Sam:
    """Put a loaded SAM's image encoder on the fastest backend of its device (in place).

    Args:
        sam: A ``Sam`` in eval mode, on its final device.
        checkpoint: The weights file it was loaded from (its sha256 keys the cache).

    Returns:
        The same ``Sam``; ``sam.image_encoder.fast_info`` says what was done.
    """
    device = sam.device
    if device.type == "cuda":
        encoder = sam.image_encoder
        use_sdpa_attention(encoder)
        encoder.forward = _autocast_forward(encoder.forward, "cuda", torch.float16)
        encoder.fast_info = FastInfo(
            "cuda-autocast", "f16", "float16 autocast and fused SDPA attention on CUDA"
        )
        return sam
    if device.type != "cpu":
        return _fallback(sam, f"there is no fast backend for device {device.type!r}")
    try:
        import openvino as ov
    except ImportError as exc:
        return _fallback(
            sam, f"OpenVINO is not installed ({exc}; pip install 'samkit[fast]' adds it)"
        )
    try:
        sam.image_encoder = _openvino_encoder(sam, Path(checkpoint), ov)
    except Exception as exc:
        reason = " ".join(str(exc).split())
        return _fallback(sam, f"the OpenVINO backend failed ({type(exc).__name__}: {reason})")
    return sam
