"""SAM 2.1 with ``SamPredictor``'s interface, so the widgets and converters work unchanged.

:class:`Sam2Predictor` wraps a transformers ``Sam2Model`` (loaded by
:func:`samkit.hf.load.load_hf`): ``set_image`` computes the image's embedding once,
``predict`` answers points, a box and a previous mask in pixels of the image, and both
take and return what segment-anything's ``SamPredictor`` does: boolean masks
`(C, H, W)`, float32 scores `(C,)` and float32 low-resolution logits `(C, 256, 256)`
(a quarter of the model's 1024 input, whatever the image's size). So ``LiveSegmenter``,
``prediction_to_detections`` and the box widget cells take it as they take SAM's.

Unlike SAM, which keeps the image's proportions and pads it to a square, SAM 2.1
stretches the image to 1024x1024; the logits are in that stretched frame, and
``predict`` maps prompts and masks between the two.

Example:
    ```python
    predictor = samkit.hf.Sam2Predictor(samkit.hf.load_hf("sam2.1_tiny"))
    predictor.set_image(image)
    masks, scores, logits = predictor.predict(box=np.array([10, 20, 200, 220]))
    ```
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
import torch
import torch.nn.functional as F

from samkit.hf.load import HfModel, load_hf


def _as_array(value: Any, name: str, shape: tuple[int | None, ...]) -> npt.NDArray[np.float32]:
    """``value`` as float32 of ``shape`` (``None``: any length), or a ValueError."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers of shape {shape}, but got {value!r}") from None
    if array.ndim != len(shape) or any(
        w is not None and w != n for w, n in zip(shape, array.shape, strict=True)
    ):
        want = "(" + ", ".join("N" if w is None else str(w) for w in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, but got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite numbers, but got {array.tolist()}")
    return array


class Sam2Predictor:
    """SAM 2.1 behind segment-anything's ``SamPredictor`` interface.

    Attributes:
        hf: The loaded model (:class:`samkit.hf.load.HfModel`).
        features: The image's embedding (a list of feature maps), or ``None``.
        original_size: The image's ``(H, W)``, or ``None``.
        is_image_set: Whether ``set_image`` was called.
    """

    def __init__(self, hf: HfModel) -> None:
        """Wrap a SAM 2.1 model.

        Args:
            hf: ``samkit.hf.load_hf("sam2.1_tiny")`` (or another SAM 2.1 size).

        Raises:
            ValueError: If ``hf`` is not a loaded SAM 2.1 model.
        """
        if not isinstance(hf, HfModel) or not hf.model_type.startswith("sam2"):
            raise ValueError(
                "Sam2Predictor needs a SAM 2.1 model from samkit.hf.load_hf('sam2.1_tiny') "
                f"(or another SAM 2.1 size), but got {getattr(hf, 'model_type', hf)!r}"
            )
        self.hf = hf
        self.model = hf.model
        self.input_size = tuple(hf.processor.image_processor.size[k] for k in ("height", "width"))
        self.reset_image()

    @property
    def device(self) -> torch.device:
        """Where the model is."""
        return self.hf.device

    def reset_image(self) -> None:
        """Forget the image and its embedding."""
        self.features: list[torch.Tensor] | None = None
        self.original_size: tuple[int, int] | None = None
        self.is_image_set = False

    @torch.inference_mode()
    def set_image(self, image: npt.NDArray[np.uint8], image_format: str = "RGB") -> None:
        """Compute the embedding of ``image``; prompts are then answered from it.

        Args:
            image: uint8 `(H, W, 3)`.
            image_format: ``"RGB"`` or ``"BGR"`` (OpenCV's order).

        Raises:
            ValueError: If the image is not uint8 `(H, W, 3)`, or the format is unknown.
            RuntimeError: If the model was released (another model was loaded since).
        """
        if image_format not in ("RGB", "BGR"):
            raise ValueError(f"image_format must be 'RGB' or 'BGR', but got {image_format!r}")
        pixels = np.asarray(image)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(
                f"image must be uint8 of shape (H, W, 3), but got {pixels.dtype} of shape "
                f"{pixels.shape}"
            )
        self.hf.check()
        if image_format == "BGR":
            pixels = pixels[..., ::-1]
        # a writable copy: torch warns about read-only arrays (load_image's are)
        inputs = self.hf.processor(images=np.array(pixels), return_tensors="pt")
        values = inputs["pixel_values"].to(self.device, self.hf.dtype)
        self.features = self.model.get_image_embeddings(values)
        self.original_size = (int(pixels.shape[0]), int(pixels.shape[1]))
        self.is_image_set = True

    def _prompts(
        self, point_coords: Any, point_labels: Any, box: Any, mask_input: Any
    ) -> dict[str, torch.Tensor]:
        """The model's prompt tensors, in its 1024x1024 frame."""
        assert self.original_size is not None  # predict checked it
        height, width = self.original_size
        scale = np.array([self.input_size[1] / width, self.input_size[0] / height], np.float32)
        prompts: dict[str, torch.Tensor] = {}
        device, dtype = self.device, self.hf.dtype
        if (point_coords is None) != (point_labels is None):
            raise ValueError("point_coords and point_labels must be given together")
        if point_coords is not None:
            coords = _as_array(point_coords, "point_coords", (None, 2))
            labels = _as_array(point_labels, "point_labels", (len(coords),))
            if not np.isin(labels, (0, 1)).all():
                raise ValueError(f"point_labels must be 0 or 1, but got {labels.tolist()}")
            prompts["input_points"] = torch.as_tensor(coords * scale)[None, None].to(device, dtype)
            prompts["input_labels"] = torch.as_tensor(labels.astype(np.int64))[None, None]
            prompts["input_labels"] = prompts["input_labels"].to(self.device)
        if box is not None:
            xyxy = (
                _as_array(box, "box", (4,)) if np.ndim(box) == 1 else _as_array(box, "box", (1, 4))
            )
            scaled = xyxy.reshape(2, 2) * scale
            prompts["input_boxes"] = torch.as_tensor(scaled.reshape(1, 1, 4)).to(device, dtype)
        if mask_input is not None:
            low = _as_array(mask_input, "mask_input", (1, None, None))
            prompts["input_masks"] = torch.as_tensor(low[None]).to(device, dtype)
        return prompts

    @torch.inference_mode()
    def predict(
        self,
        point_coords: npt.ArrayLike | None = None,
        point_labels: npt.ArrayLike | None = None,
        box: npt.ArrayLike | None = None,
        mask_input: npt.ArrayLike | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[npt.NDArray[Any], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Masks for the prompts, as ``SamPredictor.predict`` gives them.

        Args:
            point_coords: `(N, 2)` points, x then y, in pixels of the image.
            point_labels: `(N,)` 1 (include) or 0 (exclude).
            box: `(4,)` (or `(1, 4)`) box, x0 y0 x1 y1 in pixels.
            mask_input: `(1, 256, 256)` low-resolution logits of an earlier prediction.
            multimask_output: Three candidate masks instead of one.
            return_logits: Return the masks' logits (float32) instead of booleans.

        Returns:
            ``(masks, scores, logits)``: masks `(C, H, W)` (bool), scores `(C,)` float32,
            low-resolution logits `(C, 256, 256)` float32, with C 3 or 1.

        Raises:
            RuntimeError: If no image was set, or the model was released.
            ValueError: If a prompt has the wrong shape or values.
        """
        if not self.is_image_set or self.features is None or self.original_size is None:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        self.hf.check()
        prompts = self._prompts(point_coords, point_labels, box, mask_input)
        output = self.model(
            image_embeddings=self.features, multimask_output=bool(multimask_output), **prompts
        )
        low = output.pred_masks[0, 0].float()
        logits = F.interpolate(low[None], self.original_size, mode="bilinear", align_corners=False)[
            0
        ]
        masks = logits if return_logits else logits > 0.0
        return (
            masks.cpu().numpy(),
            output.iou_scores[0, 0].float().cpu().numpy(),
            low.cpu().numpy(),
        )


def load_predictor(model_type: str = "sam2.1_tiny", **kwargs: Any) -> Sam2Predictor:
    """Load a SAM 2.1 size and wrap it: ``Sam2Predictor(load_hf(model_type, ...))``.

    Args:
        model_type: ``"sam2.1_tiny"``, ``"sam2.1_small"``, ``"sam2.1_base_plus"`` or
            ``"sam2.1_large"``.
        **kwargs: ``weights``, ``device``, ``dtype``, ``keep``, as in ``load_hf``.

    Returns:
        The predictor.
    """
    return Sam2Predictor(load_hf(model_type, **kwargs))


def generate_masks(
    hf: HfModel,
    image: npt.NDArray[np.uint8],
    points_per_side: int = 32,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    points_per_batch: int = 64,
) -> sv.Detections:
    """Automatic masks with SAM 2.1: transformers' ``mask-generation`` pipeline.

    A grid of points over the image, one mask per point, filtered by predicted IoU and
    stability and de-duplicated (as ``SamAutomaticMaskGenerator``, without crops).

    Args:
        hf: SAM 2.1, from ``samkit.hf.load_hf("sam2.1_tiny")`` (or another size).
        image: RGB uint8 `(H, W, 3)`.
        points_per_side: The grid: ``points_per_side**2`` points.
        pred_iou_thresh: Keep masks whose predicted IoU is at least this.
        stability_score_thresh: Keep masks at least this stable.
        points_per_batch: Points decoded at once (memory against speed).

    Returns:
        ``sv.Detections`` with ``mask`` `(N, H, W)` bool, ``xyxy`` from the masks and
        the predicted IoU as ``confidence``, largest first (as ``sv.Detections.from_sam``).

    Raises:
        ValueError: If ``hf`` is not SAM 2.1, or the image is not RGB uint8.
    """
    from PIL import Image
    from transformers import pipeline

    predictor = Sam2Predictor(hf)  # checks the model
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(
            f"image must be RGB uint8 of shape (H, W, 3), but got {pixels.dtype} of shape "
            f"{pixels.shape}"
        )
    hf.check()
    generator = pipeline(
        "mask-generation",
        model=hf.model,
        image_processor=hf.processor.image_processor,
        device=predictor.device,
    )
    found = generator(
        Image.fromarray(pixels),
        points_per_batch=points_per_batch,
        points_per_crop=points_per_side,
        pred_iou_thresh=pred_iou_thresh,
        stability_score_thresh=stability_score_thresh,
    )
    masks = np.array([np.asarray(m.cpu(), dtype=bool) for m in found["masks"]], dtype=bool)
    masks = masks.reshape(-1, *pixels.shape[:2])
    scores = np.asarray(found["scores"].float().cpu() if len(masks) else [], dtype=np.float32)
    order = np.argsort(-masks.sum(axis=(1, 2)), kind="stable")
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(masks[order]).astype(np.float32).reshape(-1, 4),
        mask=masks[order],
        confidence=scores[order],
    )
