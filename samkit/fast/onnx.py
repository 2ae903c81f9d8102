"""The prompt decoder exported to ONNX, as segment-anything's own exporter does.

``export_decoder`` wraps ``segment_anything.utils.onnx.SamOnnxModel`` (prompt encoder,
mask decoder and mask post-processing in one graph, the image embedding as an input)
and exports it with a dynamic number of points, so a browser or any ONNX Runtime can
answer a prompt given the embedding. ``--quantize`` adds onnxruntime's dynamic int8
quantization.

Inputs of the exported graph (all float32): ``image_embeddings`` ``(1, C, h, w)``,
``point_coords`` ``(1, N, 2)`` in the model's input frame, ``point_labels`` ``(1, N)``
(1 include, 0 exclude, 2 and 3 the box's corners, -1 padding), ``mask_input``
``(1, 1, 4h, 4w)``, ``has_mask_input`` ``(1,)``, ``orig_im_size`` ``(2,)``. Outputs:
``masks`` ``(1, 1, H, W)`` logits, ``iou_predictions`` ``(1, 1)``, ``low_res_masks``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from segment_anything.utils.onnx import SamOnnxModel

from samkit.files import atomic_writer

#: The graph's input names, in order.
INPUT_NAMES = (
    "image_embeddings",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
    "orig_im_size",
)
#: The graph's output names, in order.
OUTPUT_NAMES = ("masks", "iou_predictions", "low_res_masks")


class _DynamicCropSamOnnxModel(SamOnnxModel):
    """``SamOnnxModel`` with the crop to the unpadded image kept dynamic in the graph.

    The stock model crops with ``masks[..., :h, :w]`` where ``h, w`` come from the
    ``orig_im_size`` input; today's tracer turns such a slice into a constant (the size
    of the example), so every other image size would get a stretched mask. Selecting
    ``arange(h)`` rows and ``arange(w)`` columns is the same crop, and stays an input
    of the graph.
    """

    def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """Upscale to the padded input, crop the padding, resize to the image.

        Args:
            masks: Low-resolution logits, shape ``(B, M, 4h, 4w)``.
            orig_im_size: The image's ``(H, W)``, float.

        Returns:
            Logits of shape ``(B, M, H, W)``.
        """
        masks = F.interpolate(
            masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False
        )
        prepadded = self.resize_longest_image_size(orig_im_size, self.img_size).to(torch.int64)
        masks = masks.index_select(2, torch.arange(prepadded[0]))
        masks = masks.index_select(3, torch.arange(prepadded[1]))
        size = orig_im_size.to(torch.int64)
        target = (size[0], size[1])  # tensors: the traced graph keeps them as inputs
        return F.interpolate(masks, size=target, mode="bilinear", align_corners=False)  # type: ignore[arg-type]


def _export(model: torch.nn.Module, dummy: tuple[torch.Tensor, ...], out: Path, opset: int) -> None:
    """Trace ``model`` on ``dummy`` into ``out``, the number of points dynamic."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and exporter notices
        torch.onnx.export(
            model,
            dummy,
            str(out),
            dynamo=False,
            export_params=True,
            opset_version=opset,
            do_constant_folding=True,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={
                "point_coords": {1: "num_points"},
                "point_labels": {1: "num_points"},
            },
        )


def _quantize(path: Path) -> None:
    """Replace an exported graph with its int8 copy (onnxruntime dynamic quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = path.with_name(path.name + ".q")
    quantize_dynamic(path, quantized, weight_type=QuantType.QUInt8)
    os.replace(quantized, path)


def export_decoder(
    sam: Sam,
    out: str | os.PathLike[str],
    *,
    quantize: bool = False,
    opset: int = 17,
    return_single_mask: bool = True,
) -> Path:
    """Export SAM's prompt decoder to an ONNX file (written whole, then renamed).

    The graph is made and checked in a scratch folder, then written to ``out`` with
    :func:`samkit.files.atomic_writer`.

    Args:
        sam: A loaded ``Sam`` (any device; it is exported from the CPU).
        out: The ``.onnx`` file to write.
        quantize: Also quantize the weights to int8 (onnxruntime dynamic quantization).
        opset: The ONNX opset.
        return_single_mask: Return the best mask only, as segment-anything's exporter
            does by default (the multimask answer for one point, the single answer
            for more prompts).

    Returns:
        The written file.

    Raises:
        ValueError: If ``out`` does not end in ``.onnx`` or ``opset`` is not from 11 to
            the highest opset the installed torch exports (20 for torch 2.x's exporter).
    """
    path = Path(out).expanduser()
    if path.suffix != ".onnx":
        raise ValueError(f"out must be a file ending in .onnx, but got {str(out)!r}")
    from torch.onnx import _constants as onnx_limits  # the exporter's own range

    highest = int(getattr(onnx_limits, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", 17))
    if not isinstance(opset, int) or isinstance(opset, bool) or not 11 <= opset <= highest:
        raise ValueError(
            f"opset must be an integer from 11 to {highest} (the opsets torch "
            f"{torch.__version__}'s ONNX exporter writes), but got {opset!r}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    model = _DynamicCropSamOnnxModel(sam.to("cpu").eval(), return_single_mask=return_single_mask)
    embed_dim = sam.prompt_encoder.embed_dim
    embed_size = sam.prompt_encoder.image_embedding_size
    mask_size = [4 * side for side in embed_size]
    dummy = (
        torch.randn(1, embed_dim, *embed_size),
        torch.randint(0, sam.image_encoder.img_size, (1, 5, 2)).float(),
        torch.randint(0, 4, (1, 5)).float(),
        torch.randn(1, 1, *mask_size),
        torch.tensor([1.0]),
        torch.tensor([1500.0, 2250.0]),
    )
    with tempfile.TemporaryDirectory(prefix="samkit-onnx-") as scratch:
        tmp = Path(scratch) / path.name
        _export(model, dummy, tmp, opset)
        if quantize:
            _quantize(tmp)
        import onnx

        onnx.checker.check_model(str(tmp))
        with tmp.open("rb") as source, atomic_writer(path) as target:
            shutil.copyfileobj(source, target)
    return path
