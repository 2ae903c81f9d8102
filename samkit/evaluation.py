"""Measure a SAM model on generated scenes, through the stock segment-anything API.

Everything here goes through ``SamPredictor`` and ``SamAutomaticMaskGenerator`` exactly
as a user would call them; there is no private code path. It reports:

- box-prompt mIoU (``predict(box=..., multimask_output=False)``, the ground-truth box),
- single-positive-point mIoU (the point deepest inside the shape, the highest-scored
  of the three masks of ``multimask_output=True``),
- automatic-mask-generation recall (a shape counts as found when some generated mask
  has IoU >= 0.7 with it),
- and, for honesty, the baseline "the box itself as the mask".

Example (it runs for tens of seconds on a CPU, so the doctests skip it; the slow tests
and ``make eval-shapes`` run the evaluation):
    >>> import samkit
    >>> from samkit.evaluation import evaluate
    >>> report = evaluate(samkit.load_sam("shapes"), seeds=range(4))  # doctest: +SKIP
    >>> report.box_miou > 0.9  # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import supervision as sv
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.modeling import Sam

from samkit.masks import deepest_point, mask_iou
from samkit.model import SHAPES_AMG_SETTINGS
from samkit.shapes import Scene, make_scene

#: Image sizes (height, width) of the held-out evaluation scenes: non-square both ways.
EVAL_SIZES: tuple[tuple[int, int], ...] = ((480, 640), (600, 400))

#: A shape counts as found by the automatic generator at this IoU.
AMG_RECALL_IOU = 0.7


def box_mask(xyxy: npt.NDArray[np.float32], shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """The filled box `[x0, y0, x1, y1]` (max inclusive) as a boolean mask of `shape`."""
    box = np.round(np.asarray(xyxy, dtype=np.float64)).reshape(1, 4)
    return np.asarray(sv.xyxy_to_mask(box, (shape[1], shape[0]))[0], dtype=bool)


@dataclass
class Report:
    """What ``evaluate`` measured. IoU lists hold one value per shape."""

    scenes: int = 0
    box_ious: list[float] = field(default_factory=list)
    point_ious: list[float] = field(default_factory=list)
    baseline_ious: list[float] = field(default_factory=list)
    amg_found: list[bool] = field(default_factory=list)
    amg_masks: list[int] = field(default_factory=list)

    @property
    def box_miou(self) -> float:
        """Mean IoU of the box-prompt masks."""
        return float(np.mean(self.box_ious)) if self.box_ious else float("nan")

    @property
    def point_miou(self) -> float:
        """Mean IoU of the single-point masks (highest-scored of three)."""
        return float(np.mean(self.point_ious)) if self.point_ious else float("nan")

    @property
    def baseline_miou(self) -> float:
        """Mean IoU of the box itself taken as the mask."""
        return float(np.mean(self.baseline_ious)) if self.baseline_ious else float("nan")

    @property
    def amg_recall(self) -> float:
        """Share of shapes that the automatic generator found at IoU >= 0.7."""
        return float(np.mean(self.amg_found)) if self.amg_found else float("nan")

    def summary(self) -> str:
        """The figures as a few aligned lines of text."""
        shapes = len(self.box_ious)
        lines = [
            f"scenes {self.scenes}, shapes {shapes}",
            f"box-prompt mIoU                 {self.box_miou:.3f}",
            f"single-point mIoU (top score)   {self.point_miou:.3f}",
            f"box-as-mask baseline mIoU       {self.baseline_miou:.3f}",
        ]
        if self.amg_found:
            lines.append(
                f"AMG recall @ IoU {AMG_RECALL_IOU}          {self.amg_recall:.3f}"
                f"  ({np.mean(self.amg_masks):.1f} masks per image)"
            )
        return "\n".join(lines)


def eval_scenes(
    seeds: Iterable[int], generator: Callable[[int, int, int], Scene] = make_scene
) -> list[Scene]:
    """Held-out scenes of ``generator``, alternating between the sizes of ``EVAL_SIZES``."""
    out = []
    for i, seed in enumerate(seeds):
        height, width = EVAL_SIZES[i % len(EVAL_SIZES)]
        out.append(generator(int(seed), height, width))
    return out


def evaluate(
    sam: Sam,
    seeds: Iterable[int] = range(100),
    amg: bool = True,
    amg_settings: dict[str, Any] | None = None,
    scenes: Callable[[int, int, int], Scene] = make_scene,
) -> Report:
    """Evaluate ``sam`` on held-out generated scenes through the stock predictor and AMG.

    Args:
        sam: A ``segment_anything.modeling.Sam`` in eval mode.
        seeds: Scene seeds; scene ``i`` gets size ``EVAL_SIZES[i % 2]``.
        amg: Also run ``SamAutomaticMaskGenerator`` and measure recall.
        amg_settings: Generator settings (default ``SHAPES_AMG_SETTINGS``).
        scenes: Makes scene ``(seed, height, width)``: ``samkit.shapes.make_scene``
            (the bundled model's own), or another family such as
            ``samkit.rings.make_ring_scene``.

    Returns:
        The ``Report``.
    """
    predictor = SamPredictor(sam)
    generator = (
        SamAutomaticMaskGenerator(sam, **(amg_settings or SHAPES_AMG_SETTINGS)) if amg else None
    )
    report = Report()
    for scene in eval_scenes(seeds, scenes):
        report.scenes += 1
        shape = scene.image.shape[:2]
        predictor.set_image(scene.image)
        for gt, xyxy in zip(scene.masks, scene.xyxy, strict=True):
            masks, _, _ = predictor.predict(box=xyxy, multimask_output=False)
            report.box_ious.append(mask_iou(masks[0], gt))
            point = deepest_point(gt)
            masks, scores, _ = predictor.predict(
                point_coords=point[None], point_labels=np.array([1]), multimask_output=True
            )
            report.point_ious.append(mask_iou(masks[int(np.argmax(scores))], gt))
            report.baseline_ious.append(mask_iou(box_mask(xyxy, shape), gt))
        if generator is not None:
            results = generator.generate(scene.image)
            report.amg_masks.append(len(results))
            if results:
                found = np.stack([r["segmentation"] for r in results])
                best = np.asarray(mask_iou(scene.masks, found)).max(axis=1)
            else:
                best = np.zeros(len(scene.masks))
            report.amg_found.extend(bool(v >= AMG_RECALL_IOU) for v in best)
    return report
