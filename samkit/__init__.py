"""samkit: the helpers behind the Segment Anything tutorial notebooks.

Every public name is re-exported here, so a notebook only ever needs ``import samkit``.
"""

from __future__ import annotations

from samkit.model import SAM_BUILDERS, build_shapes_sam

__version__ = "0.1.0"

__all__ = [
    "SAM_BUILDERS",
    "__version__",
    "build_shapes_sam",
]
