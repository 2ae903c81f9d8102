"""SAM's outputs as ``supervision.Detections``.

``SamAutomaticMaskGenerator.generate`` returns a list of dicts; ``SamPredictor.predict``
returns a tuple ``(masks, scores, logits)``. Both become one ``sv.Detections``, so the
rest of the tutorial (sorting, de-duplicating, drawing) works on one type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
import torch

from samkit.checks import is_finite_number, short

#: The keys of every dict that ``SamAutomaticMaskGenerator.generate`` returns.
AMG_KEYS: tuple[str, ...] = (
    "segmentation",
    "area",
    "bbox",
    "predicted_iou",
    "point_coords",
    "stability_score",
    "crop_box",
)


def _check_amg_results(results: Any) -> list[dict[str, Any]]:
    """Return ``results`` as a list after checking it looks like ``generate``'s output."""
    if not isinstance(results, (list, tuple)):
        raise ValueError(
            "results must be the list of dicts returned by "
            f"SamAutomaticMaskGenerator.generate(...), but got {type(results).__name__}"
        )
    for i, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise ValueError(f"result {i} must be a dict, but got {type(result).__name__}")
        for key in AMG_KEYS:
            if key not in result:
                raise ValueError(
                    f"result {i} is missing key '{key}'; "
                    "SamAutomaticMaskGenerator.generate(...) gives " + ", ".join(AMG_KEYS)
                )
        if np.shape(result["point_coords"]) != (1, 2):
            raise ValueError(
                f"result {i} key 'point_coords' must be [[x, y]], "
                f"but got {result['point_coords']!r}"
            )
        for key in ("area", "predicted_iou", "stability_score"):
            if not is_finite_number(result[key]):
                raise ValueError(
                    f"result {i} key '{key}' must be a finite number, but got {short(result[key])}"
                )
        for key, layout in (("bbox", "[x, y, w, h]"), ("crop_box", "[x, y, w, h]")):
            value = result[key]
            if not (
                isinstance(value, (list, tuple, np.ndarray))
                and np.shape(value) == (4,)
                and all(is_finite_number(v) for v in value)
            ):
                raise ValueError(
                    f"result {i} key '{key}' must be 4 numbers {layout}, but got {short(value)}"
                )
    checked = [dict(result) for result in results]
    shape: tuple[int, ...] | None = None
    for i, result in enumerate(checked):
        result["segmentation"] = _segmentation(result["segmentation"], f"result {i}")
        if shape is not None and result["segmentation"].shape != shape:
            raise ValueError(
                f"result {i} key 'segmentation' has shape {result['segmentation'].shape}, "
                f"but result 0 has shape {shape}: all masks must be of one image"
            )
        shape = result["segmentation"].shape
    return checked


def _segmentation(value: Any, where: str) -> npt.NDArray[np.bool_]:
    """A result's ``segmentation`` as a bool `(H, W)` mask.

    A bool array is kept; 0/1 integers or floats become bool; a COCO RLE dict
    (``output_mode="coco_rle"``) is decoded, checked, with ``samkit.export.rle_to_masks``.
    """
    if isinstance(value, Mapping):
        from samkit.export import rle_to_masks

        try:
            return rle_to_masks([dict(value)])[0]
        except ValueError as error:
            raise ValueError(f"{where} key 'segmentation': {error}") from None
    if not isinstance(value, np.ndarray) or value.ndim != 2 or 0 in value.shape:
        described = (
            f"shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        )
        raise ValueError(
            f"{where} key 'segmentation' must be a bool mask of shape (H, W), but got {described}"
        )
    if value.dtype == np.bool_:
        return value
    if np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating):
        outside = ~np.isin(value, (0, 1))
        if not outside.any():
            return value.astype(bool)
        found = value[outside].flat[0]
        raise ValueError(
            f"{where} key 'segmentation' must be a mask of 0s and 1s (or bool), but holds "
            f"{found!r} (dtype {value.dtype}); threshold it first, e.g. mask > 0.5"
        )
    raise ValueError(
        f"{where} key 'segmentation' must be a bool mask (or 0/1 numbers), but got dtype "
        f"{value.dtype}"
    )


def _check_image_shape(image_shape: object) -> tuple[int, int]:
    """Return ``image_shape`` as ``(H, W)`` if it is two whole numbers above 0, else raise."""
    if (
        not isinstance(image_shape, tuple | list)
        or len(image_shape) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in image_shape)
        or min(image_shape) <= 0
    ):
        raise ValueError(
            "image_shape must be (H, W), two whole numbers above 0 (image.shape[:2]), "
            f"but got {image_shape!r}"
        )
    return int(image_shape[0]), int(image_shape[1])


def amg_to_detections(
    results: Sequence[Mapping[str, Any]], image_shape: tuple[int, int] | None = None
) -> sv.Detections:
    """Convert ``SamAutomaticMaskGenerator.generate`` output into ``sv.Detections``.

    Wraps ``sv.Detections.from_sam`` (masks and boxes, sorted by area, largest first)
    and adds what it drops, row for row in the same order.

    Args:
        results: The list of dicts returned by ``generate``, each with the keys
            ``segmentation``, ``area``, ``bbox``, ``predicted_iou``, ``point_coords``,
            ``stability_score`` and ``crop_box``.
        image_shape: The image's ``(H, W)`` (``image.shape[:2]``). Optional; with it,
            an empty list still gives a ``mask`` array, of shape `(0, H, W)`, so that
            what follows (export, drawing, comparing) works with no mask as well, and
            the masks are checked to have that size.

    Returns:
        ``sv.Detections`` with N rows, largest mask first: ``mask`` `(N, H, W)` bool,
        ``xyxy`` `(N, 4)`, ``confidence`` = ``predicted_iou``, and in ``data``:
        ``predicted_iou`` `(N,)`, ``stability_score`` `(N,)`, ``point_coords`` `(N, 2)`
        (the grid point that produced the mask, ``[x, y]``) and ``crop_box`` `(N, 4)`
        (the crop the mask came from, ``[x, y, w, h]`` as SAM gives it), all float32.
        An empty list gives empty detections with the same ``data`` keys (and ``mask``
        `(0, H, W)` when ``image_shape`` is given).

    Raises:
        ValueError: If ``results`` is not a list of dicts with SAM's keys, a
            ``segmentation`` is not a mask (bool, 0/1 numbers, or a COCO RLE dict), the
            masks differ in size (or from ``image_shape``, which must be ``(H, W)``), or
            a ``bbox``/``crop_box`` is not 4 numbers or an
            ``area``/``predicted_iou``/``stability_score`` is not a number. The message
            names the result and the key.

    Example:
        ```python
        results = SamAutomaticMaskGenerator(sam).generate(image)
        detections = samkit.amg_to_detections(results)
        best = detections[detections.confidence > 0.9]
        ```
    """
    # Sort first (stably, by area, largest first: what from_sam does) so that the rows
    # of ``data`` line up with the rows from_sam builds from the same, already sorted list.
    ordered = sorted(_check_amg_results(results), key=lambda r: r["area"], reverse=True)
    shape = None if image_shape is None else _check_image_shape(image_shape)
    base = sv.Detections.from_sam(sam_result=ordered)
    mask = base.mask
    if shape is not None:
        if mask is None or len(mask) == 0:
            mask = np.zeros((0, *shape), dtype=bool)
        elif mask.shape[1:] != shape:
            raise ValueError(
                f"the masks have shape {mask.shape[1:]}, but image_shape is {shape}: pass "
                "the shape of the image the masks were generated on"
            )

    def column(key: str, *shape: int) -> npt.NDArray[np.float32]:
        return np.array([r[key] for r in ordered], dtype=np.float32).reshape(-1, *shape)

    predicted_iou = column("predicted_iou")
    return sv.Detections(
        xyxy=base.xyxy,
        mask=mask,
        confidence=predicted_iou,
        data={
            "predicted_iou": predicted_iou,
            "stability_score": column("stability_score"),
            "point_coords": column("point_coords", 2),
            "crop_box": column("crop_box", 4),
        },
    )


def _as_numpy(value: Any, name: str) -> npt.NDArray[Any]:
    """Return a numpy array from a numpy array or a torch tensor (any device and dtype).

    NumPy has no bfloat16: such a tensor (``torch.autocast`` output) becomes float32.
    """
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        return tensor.numpy()
    if isinstance(value, np.ndarray):
        return value
    raise ValueError(
        f"{name} must be a np.ndarray or a torch.Tensor, but got {type(value).__name__}"
    )


def prediction_to_detections(
    masks: npt.NDArray[np.bool_] | torch.Tensor,
    scores: npt.NDArray[np.floating] | torch.Tensor,
    logits: npt.NDArray[np.floating] | torch.Tensor | None = None,
) -> sv.Detections:
    """Convert ``SamPredictor.predict`` (or ``predict_torch``) output into ``sv.Detections``.

    Rows keep SAM's order (not sorted), so row ``i`` of one prompt is mask ``i`` of
    ``predict``; ``data["prompt_index"]`` and ``data["mask_index"]`` say which prompt
    and which of its masks every row is.

    Args:
        masks: Boolean masks: shape `(C, H, W)` from ``predict`` (C is 3 with
            ``multimask_output=True``, else 1), or `(B, C, H, W)` from ``predict_torch``
            with B prompts. A numpy array or a torch tensor (any device).
        scores: SAM's predicted IoU of every mask: shape `(C,)` or `(B, C)`; any float
            dtype (float16 and bfloat16 from ``torch.autocast`` too), kept as float32.
        logits: Optional low-resolution logits: shape `(C, h, w)` or `(B, C, h, w)`;
            kept in ``data["logits"]`` (e.g. to feed back as ``mask_input``).

    Returns:
        ``sv.Detections`` with ``B * C`` rows: ``mask`` `(B*C, H, W)`, ``xyxy`` from the
        masks (``sv.mask_to_xyxy``; an empty mask gives ``[0, 0, 0, 0]``),
        ``confidence`` = ``scores``, and ``data["prompt_index"]`` (the prompt, 0 for
        ``predict``), ``data["mask_index"]`` (the mask of that prompt) and, when given,
        ``data["logits"]`` `(B*C, h, w)`.

    Raises:
        ValueError: If an input is not an array or tensor, ``masks`` is not boolean
            `(C, H, W)` / `(B, C, H, W)`, or ``scores`` / ``logits`` do not match it.

    Example:
        ```python
        masks, scores, logits = predictor.predict(box=box, multimask_output=True)
        detections = samkit.prediction_to_detections(masks, scores, logits)
        ```
    """
    masks_np = _as_numpy(masks, "masks")
    scores_np = _as_numpy(scores, "scores")
    if masks_np.ndim not in (3, 4):
        raise ValueError(
            "masks must have shape (C, H, W) from SamPredictor.predict or (B, C, H, W) "
            f"from SamPredictor.predict_torch, but got shape {masks_np.shape}"
        )
    if masks_np.dtype != np.bool_:
        raise ValueError(
            "masks must be boolean, as SamPredictor.predict(..., return_logits=False) "
            f"gives them, but got dtype {masks_np.dtype}"
        )
    lead = masks_np.shape[:-2]
    if scores_np.shape != lead:
        raise ValueError(
            f"scores must have shape {lead} to match masks of shape {masks_np.shape}, "
            f"but got shape {scores_np.shape}"
        )
    batch, count = (1, *lead) if len(lead) == 1 else lead
    height, width = masks_np.shape[-2:]
    flat_masks = masks_np.reshape(batch * count, height, width)
    data: dict[str, Any] = {
        "prompt_index": np.repeat(np.arange(batch), count),
        "mask_index": np.tile(np.arange(count), batch),
    }
    if logits is not None:
        logits_np = _as_numpy(logits, "logits")
        if logits_np.ndim != len(lead) + 2 or logits_np.shape[: len(lead)] != lead:
            expected = ", ".join([*map(str, lead), "h", "w"])
            raise ValueError(
                f"logits must have shape ({expected}) to match masks of shape "
                f"{masks_np.shape}, but got shape {logits_np.shape}"
            )
        data["logits"] = logits_np.reshape(batch * count, *logits_np.shape[-2:]).astype(np.float32)
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(flat_masks).astype(np.float32).reshape(-1, 4),
        mask=flat_masks,
        confidence=scores_np.reshape(-1).astype(np.float32),
        data=data,
    )
