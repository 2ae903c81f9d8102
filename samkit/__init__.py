"""samkit: the helpers behind the Segment Anything tutorial notebooks.

Every public name is re-exported here, so a notebook only ever needs ``import samkit``.
"""

from __future__ import annotations

from samkit.model import SAM_BUILDERS, build_shapes_sam, default_model_type, load_sam
from samkit.weights import (
    CHECKPOINTS,
    ChecksumError,
    DownloadError,
    default_weights_dir,
    download_checkpoint,
)

__version__ = "0.1.0"

__all__ = [
    "CHECKPOINTS",
    "SAM_BUILDERS",
    "ChecksumError",
    "DownloadError",
    "__version__",
    "build_shapes_sam",
    "default_model_type",
    "default_weights_dir",
    "download_checkpoint",
    "load_sam",
]
