"""Fine-tune SAM on your own objects: a COCO file and its images in, a SAM state dict out.

- :func:`finetune` (``samkit finetune`` on the command line): trains the mask decoder on
  cached image embeddings, validates by image, keeps the best epoch, resumes;
- ``data``: reading and checking a COCO data set, the split by image;
- ``coco``: writing a data set (generated scenes, images you labeled);
- ``embeddings``: the on-disk embedding cache;
- ``prompts``, ``loss``, ``steps``, ``train``: SAM's training recipe and the loop;
- ``result``: :class:`FinetuneResult`.

Example:
    ```python
    import samkit
    result = samkit.finetune.finetune("labels/annotations.json", model_type="vit_b",
                                      out="vit_b_mine.pth")
    sam = samkit.load_sam("vit_b", checkpoint=result.checkpoint)
    ```
"""

from __future__ import annotations

from samkit.finetune import coco as coco
from samkit.finetune.api import finetune
from samkit.finetune.data import Dataset, load_dataset
from samkit.finetune.result import FinetuneResult
from samkit.finetune.train import NonFiniteLossError

__all__ = ["Dataset", "FinetuneResult", "NonFiniteLossError", "finetune", "load_dataset"]
