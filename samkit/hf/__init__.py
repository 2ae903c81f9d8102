"""SAM 2.1 and SAM 3 through Hugging Face transformers.

- ``samkit.hf.load``: :func:`load_hf` (the Hub, or random weights with no download;
  device, precision, the previous model released) and the gated-checkpoint message;
- ``samkit.hf.sam2``: :class:`Sam2Predictor`, SAM 2.1 with ``SamPredictor``'s interface,
  and :func:`generate_masks`, its automatic masks;
- ``samkit.hf.sam3``: :func:`segment_text`, phrases to ``sv.Detections`` with SAM 3;
- ``samkit.hf.configs``: the architectures, full size and small, and an offline tokenizer.

transformers itself is imported only when a model is built or loaded.
"""

from __future__ import annotations

from samkit.hf.load import GatedModelError, HfModel, load_hf, release_all, transformers_status
from samkit.hf.sam2 import Sam2Predictor, generate_masks, load_predictor
from samkit.hf.sam3 import segment_text

__all__ = [
    "GatedModelError",
    "HfModel",
    "Sam2Predictor",
    "generate_masks",
    "load_hf",
    "load_predictor",
    "release_all",
    "segment_text",
    "transformers_status",
]
