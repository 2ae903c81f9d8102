"""The automatic mask generator of samkit: ``MaskGenerator``.

Every entry point that generates masks automatically (``samkit segment``, both
engines; ``samkit.FastMaskGenerator``; the notebooks) uses this one class, defined in
:mod:`samkit.amg.generator`. It takes the same arguments and gives the same records as
segment-anything's ``SamAutomaticMaskGenerator``, and fixes what fails there on real
photos and machines:

- a 12-megapixel photo: the stock generator upscales every candidate mask of a batch
  to the photo's size before filtering (over 12 GB of memory); here candidates are
  filtered at the decoder's low resolution and the survivors upscaled in chunks;
- a Mac: the stock generator sends its point grid as float64, which MPS refuses;
  here points are float32 on every device;
- a hard image with crops: the stock generator raises ``IndexError`` when no crop
  keeps a mask (segment-anything issue 614); here ``generate`` returns ``[]``.

Example:
    ```python
    generator = samkit.generator.MaskGenerator(sam, **samkit.amg_settings(crop_n_layers=1))
    records = generator.generate(image)  # [] when nothing passes the filters
    ```
"""

from __future__ import annotations

from samkit.amg.generator import STABILITY_MARGIN, MaskGenerator

__all__ = ["STABILITY_MARGIN", "MaskGenerator"]
