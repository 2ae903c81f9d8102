"""SAM's image encoder on OpenVINO: converted, quantized to int8, compiled, and run.

``openvino`` and ``nncf`` are optional (``pip install openvino nncf``): this module
takes the imported ``openvino`` module as an argument and imports ``nncf`` only when it
quantizes, so that importing it needs neither.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

import numpy as np
import torch
from segment_anything.modeling import Sam

from samkit.fast.cpu import cpu_threads
from samkit.fast.info import FastInfo
from samkit.fast.trial import encoder_input


class OpenVINOImageEncoder(torch.nn.Module):
    """A compiled OpenVINO image encoder with the interface of ``ImageEncoderViT``.

    Attributes:
        img_size: The input side in pixels, read by ``Sam.preprocess``.
        fast_info: What was compiled and how (:class:`~samkit.fast.info.FastInfo`).
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

        Raises:
            ValueError: If ``x`` is not of shape ``(B, 3, img_size, img_size)``.
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


def convert_openvino(encoder: torch.nn.Module, input_size: int, ov: Any) -> Any:
    """Convert an image encoder to an OpenVINO model with a fixed input shape.

    The stock attention is traced as it is: OpenVINO fuses it well by itself, while a
    fused SDPA call with the relative positions as an explicit mask ran slower there.

    Args:
        encoder: A ``segment_anything`` ``ImageEncoderViT``.
        input_size: Its input side in pixels: the model takes ``(1, 3, S, S)``.
        ov: The ``openvino`` module.

    Returns:
        The float32 ``openvino.Model``.
    """
    example = torch.zeros(1, 3, input_size, input_size)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notices about shape-dependent Python
        return ov.convert_model(
            _traced_once(encoder, example), example_input=example,
            input=[(1, 3, input_size, input_size)],
        )  # fmt: skip


def _traced_once(encoder: torch.nn.Module, example: torch.Tensor) -> Any:
    """OpenVINO's own TorchScript decoder of ``encoder``, traced without the trace check.

    ``convert_model`` traces with ``torch.jit.trace``'s default check, which runs the
    model twice more to compare: two thirds of a conversion that took 61 s for ``vit_b``
    on 2 cores (16 s without it), for the same graph. Where this OpenVINO has no such
    decoder, the module itself is given (and traced the slow way).
    """
    try:
        from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder
    except ImportError:
        return encoder
    return TorchScriptPythonDecoder(
        encoder, example_input=(example,), trace_kwargs={"check_trace": False}
    )


def quantize_int8(sam: Sam, ov_model: Any, images: list[np.ndarray]) -> Any:
    """An int8 copy of a converted encoder (NNCF post-training quantization), quietly.

    Calibrated on ``images``; the neck's convolutions stay in float32 and SmoothQuant is
    off (both kept the masks closer to the float32 ones).

    Args:
        sam: The model the encoder was converted from (for its preprocessing).
        ov_model: The float32 ``openvino.Model``.
        images: RGB ``uint8`` calibration images, each of shape ``(H, W, 3)``.

    Returns:
        The quantized ``openvino.Model``.

    Raises:
        ImportError: NNCF is not installed.
    """
    import nncf

    data = nncf.Dataset([encoder_input(sam, image).numpy() for image in images])
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


def compile_config(precision: str) -> dict[str, Any]:
    """OpenVINO CPU properties: one low-latency stream on every core, fixed precision.

    An int8 model's quantized operations run in int8 whatever the hint; the rest of it
    runs in float32.

    Args:
        precision: ``"f32"``, ``"int8"`` or ``"bf16"``.

    Returns:
        The properties for ``Core.compile_model``.
    """
    return {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": cpu_threads(),
        "INFERENCE_PRECISION_HINT": "f32" if precision == "int8" else precision,
    }
