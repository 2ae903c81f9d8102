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
import math
from typing import Any

from segment_anything import SamAutomaticMaskGenerator

from samkit import env
from samkit.model import default_model_type, model_spec

#: Parameters of ``SamAutomaticMaskGenerator`` that are not plain settings.
_NOT_SETTINGS = ("self", "model", "point_grids", "output_mode")

#: The range of each generator setting: whole numbers ``(int, low, None)`` from ``low``
#: up, fractions ``(float, low, high)`` in ``[low, high]``; any other finite number
#: ``(float, None, None)``.
AMG_RANGES: dict[str, tuple[type, float | None, float | None]] = {
    "points_per_side": (int, 1, None),
    "points_per_batch": (int, 1, None),
    "pred_iou_thresh": (float, None, None),
    "stability_score_thresh": (float, 0.0, 1.0),
    "stability_score_offset": (float, None, None),
    "box_nms_thresh": (float, 0.0, 1.0),
    "crop_n_layers": (int, 0, None),
    "crop_nms_thresh": (float, 0.0, 1.0),
    "crop_overlap_ratio": (float, 0.0, 1.0),
    "crop_n_points_downscale_factor": (int, 1, None),
    "min_mask_region_area": (int, 0, None),
}


def check_amg_setting(name: str, value: Any) -> int | float:
    """One generator setting, checked against :data:`AMG_RANGES`: the one place it is.

    Args:
        name: The setting (``points_per_side``, ...).
        value: Its value.

    Returns:
        The value (an int setting as ``int``, a float one as ``float``).

    Raises:
        ValueError: If it is not a number of the right kind, not finite, or out of range.

    Example:
        ```pycon
        >>> check_amg_setting("points_per_side", 0)
        Traceback (most recent call last):
        ...
        ValueError: points_per_side must be a whole number of at least 1, but got 0

        ```
    """
    kind, low, high = AMG_RANGES[name]
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < (low or 0):
            raise ValueError(f"{name} must be a whole number of at least {low}, but got {value!r}")
        return value
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, but got {value!r}")
    if low is not None and high is not None and not low <= number <= high:
        raise ValueError(f"{name} must be from {low:g} to {high:g}, but got {value!r}")
    return float(number)


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
            setting of ``SamAutomaticMaskGenerator`` or is out of its range (see
            :func:`check_amg_setting`), or ``SAMKIT_AMG_POINTS_PER_SIDE`` is not a whole
            number from 1 up.

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
    return {
        name: check_amg_setting(name, v) if name in AMG_RANGES else v
        for name, v in settings.items()
    }
