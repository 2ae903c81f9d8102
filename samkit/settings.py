"""Settings decided for the active model: the automatic mask generator's.

The notebooks never carry a flag of their own: the settings follow
``samkit.default_model_type()`` (``SAMKIT_MODEL``) and the model registry.

Example:
    >>> import samkit
    >>> samkit.amg_settings("shapes")["points_per_side"]
    16
"""

from __future__ import annotations

import inspect
from typing import Any

from segment_anything import SamAutomaticMaskGenerator

from samkit import env
from samkit.model import default_model_type, model_spec

#: Parameters of ``SamAutomaticMaskGenerator`` that are not plain settings.
_NOT_SETTINGS = ("self", "model", "point_grids", "output_mode")


def sam_amg_defaults() -> dict[str, Any]:
    """The default settings of segment-anything's ``SamAutomaticMaskGenerator``.

    Read from the installed class's signature, so they are always the installed
    version's defaults.

    Returns:
        Parameter names mapped to their defaults (``points_per_side``,
        ``points_per_batch``, ``pred_iou_thresh``, ...), without ``model``,
        ``point_grids`` and ``output_mode``.
    """
    parameters = inspect.signature(SamAutomaticMaskGenerator.__init__).parameters
    return {
        name: parameter.default
        for name, parameter in parameters.items()
        if name not in _NOT_SETTINGS and parameter.default is not inspect.Parameter.empty
    }


def amg_settings(model_type: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The ``SamAutomaticMaskGenerator`` settings that suit a model, with your changes.

    Args:
        model_type: ``"vit_h"``, ``"vit_l"``, ``"vit_b"`` or ``"shapes"``; defaults to
            ``samkit.default_model_type()``.
        **overrides: Settings to change, by name (e.g. ``points_per_batch=16`` when the
            GPU runs out of memory, ``min_mask_region_area=100`` to drop small islands).

    Returns:
        A new dict of keyword arguments for ``SamAutomaticMaskGenerator(sam, **settings)``:
        segment-anything's defaults, with the model's own settings from the registry on
        top (``samkit.model.MODEL_TYPES[...].amg_settings``: for ``"shapes"`` a coarser
        grid of points and thresholds that suit the small model); then the grid of
        ``SAMKIT_AMG_POINTS_PER_SIDE`` when it is set; then ``overrides``.

    Raises:
        ValueError: If ``model_type`` is not a known model type, an override is not a
            setting of ``SamAutomaticMaskGenerator``, or ``SAMKIT_AMG_POINTS_PER_SIDE``
            is not a whole number from 1 up.

    Example:
        ```python
        generator = SamAutomaticMaskGenerator(sam, **samkit.amg_settings(points_per_batch=16))
        ```
    """
    spec = model_spec(default_model_type() if model_type is None else model_type)
    settings = sam_amg_defaults()
    unknown = sorted(set(overrides) - set(settings))
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)} is not a setting of SamAutomaticMaskGenerator; the "
            f"settings are {', '.join(settings)}"
        )
    settings.update(spec.amg_settings)
    points = env.amg_points_per_side()
    if points is not None:
        settings["points_per_side"] = points
    settings.update(overrides)
    return settings
