"""segment-anything's automatic mask generator, with one known failure fixed.

With crops (``crop_n_layers`` above 0), ``SamAutomaticMaskGenerator.generate`` raises
``IndexError: index 2 is out of bounds for dimension 1 with size 0`` when no crop keeps
any mask (a hard image, strict thresholds, or untrained weights): a crop without masks
records its crop boxes as a tensor of shape `(0,)` instead of `(0, 4)`, and the step that
removes duplicates between crops cannot take their areas (segment-anything issue 614).
:class:`MaskGenerator` is the same class, with the same arguments and the same records,
that records them as `(0, 4)`, so that ``generate`` returns an empty list instead.

Example:
    ```python
    generator = samkit.generator.MaskGenerator(sam, **samkit.amg_settings(crop_n_layers=1))
    records = generator.generate(image)  # [] when nothing passes the filters
    ```
"""

from __future__ import annotations

from typing import Any

import torch
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.utils.amg import MaskData


class MaskGenerator(SamAutomaticMaskGenerator):
    """``SamAutomaticMaskGenerator`` that also returns ``[]`` with crops and no mask.

    Takes the same arguments as ``SamAutomaticMaskGenerator`` and gives the same
    records; only the crop boxes of a crop without masks get their proper shape `(0, 4)`.
    """

    def _process_crop(self, *args: Any, **kwargs: Any) -> MaskData:
        data: MaskData = super()._process_crop(*args, **kwargs)
        crop_boxes = data["crop_boxes"]
        if isinstance(crop_boxes, torch.Tensor) and crop_boxes.numel() == 0:
            data["crop_boxes"] = torch.zeros((0, 4), dtype=torch.int64)
        return data
