"""What the notebooks tell the learner about the running setup, in Spanish.

Each function returns text for a notebook to print: which model is active
(:func:`model_note`) and which image encoder ``load_sam(..., fast="auto")`` gave
(:func:`fast_note`), with how to change it. The API's own messages stay English.
"""

from __future__ import annotations

import importlib.util

from segment_anything.modeling import Sam

from samkit import env
from samkit.registry import model_spec

__all__ = ["FAST_OFF_HINT", "fast_note", "model_note"]

#: How to turn the fast path off, as the notebooks say it.
FAST_OFF_HINT = (
    "Para usar el encoder de PyTorch de siempre: %env SAMKIT_FAST=0 en una celda antes de "
    "cargar el modelo (en una terminal: SAMKIT_FAST=0)."
)

#: What the official model types are, in one phrase each.
_OFFICIAL = {
    "vit_h": "el SAM de Meta con el encoder más grande (ViT-H, 2,5 GB)",
    "vit_l": "el SAM de Meta con el encoder mediano (ViT-L, 1,2 GB)",
    "vit_b": "el SAM de Meta con el encoder más chico (ViT-B, 375 MB)",
}

_SHAPES = (
    "shapes: el SAM chiquito que viene con samkit y anda sin GPU y sin internet. Tiene la "
    "arquitectura de SAM, pero solo conoce figuras geométricas: por eso, en lugar de las "
    "fotos, los notebooks te muestran escenas de figuras, y como de cada figura conocemos "
    "la máscara exacta, cada resultado dice también qué tan bien segmentó (el IoU con la "
    "máscara exacta). Con los pesos de Meta, lo normal en Colab, vas a ver las fotos."
)


def model_note(model_type: str) -> str:
    """One paragraph on the active model type, for notebook 1.

    Args:
        model_type: A SAM model type (``"vit_h"``, ``"vit_l"``, ``"vit_b"``, ``"shapes"``).

    Returns:
        Spanish text; for ``"shapes"``, what the bundled model is and why the notebooks
        show generated scenes instead of photos.

    Raises:
        ValueError: If ``model_type`` is not a known model type.

    Example:
        >>> model_note("vit_b")
        'vit_b: el SAM de Meta con el encoder más chico (ViT-B, 375 MB).'
    """
    spec = model_spec(model_type)
    if spec.samples == "scenes":
        return _SHAPES
    what = _OFFICIAL.get(spec.name, "un modelo de Hugging Face transformers")
    return f"{spec.name}: {what}."


def fast_note(sam: Sam) -> str:
    """Which image encoder ``load_sam(..., fast=...)`` gave, and how to change it.

    Args:
        sam: A model from ``samkit.load_sam``.

    Returns:
        Two Spanish sentences: the encoder in use (OpenVINO on the CPU, float16 on the
        GPU, or PyTorch and why), and how to turn the fast path off or get it.

    Raises:
        ValueError: If ``sam`` is not a segment-anything ``Sam``.
    """
    if not isinstance(sam, Sam):
        raise ValueError(f"sam must be a segment-anything Sam, but got {type(sam).__name__}")
    info = getattr(sam.image_encoder, "fast_info", None)
    if info is not None and info.backend == "openvino":
        precision = {"f32": "float32", "int8": "int8", "bf16": "bfloat16"}.get(
            info.precision, info.precision
        )
        how = (
            "convertido antes y leído del disco"
            if info.cache_hit
            else f"convertido ahora, una sola vez, en {info.seconds:.0f} s"
        )
        return (
            f"Encoder rápido: OpenVINO en la CPU, en {precision} ({how}); las mismas "
            f"máscaras, en menos tiempo. {FAST_OFF_HINT}"
        )
    if info is not None and info.backend == "cuda-autocast":
        return (
            "Encoder rápido: la GPU en media precisión (float16), con la atención fusionada. "
            + FAST_OFF_HINT
        )
    if info is None:
        return "Encoder de PyTorch, el de siempre: el modelo se cargó sin fast."
    if (env.variable("SAMKIT_FAST") or "").lower() in ("0", "false", "no", "off"):
        return "Encoder de PyTorch, como pediste con SAMKIT_FAST=0."
    if sam.device.type == "cpu" and importlib.util.find_spec("openvino") is None:
        return (
            "Encoder de PyTorch: OpenVINO no está instalado. En una CPU, instalalo con "
            "!pip install --quiet openvino nncf y cargá el modelo de nuevo: el encoder "
            "tarda varias veces menos."
        )
    if sam.device.type == "cpu":
        return "Encoder de PyTorch: OpenVINO no pudo preparar el encoder rápido en esta máquina."
    return f"Encoder de PyTorch: en este dispositivo ({sam.device.type}) no hay uno más rápido."
