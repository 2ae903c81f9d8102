"""FastMaskGenerator against the stock generator on the bundled ``shapes`` model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.modeling import Sam

import samkit
from samkit.amg.generator import MaskGenerator
from samkit.fast.amg import FastMaskGenerator


@pytest.fixture(scope="module")
def shapes_model() -> Sam:
    return samkit.load_sam("shapes", device="cpu")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    if not a.any() and not b.any():
        return 1.0  # two empty masks (kept when the thresholds are 0) are the same mask
    return float(samkit.masks.mask_iou(a, b))


def _gap(a: float, b: float) -> float:
    if np.isnan(a) and np.isnan(b):
        return 0.0  # the stability of an empty mask is 0/0 in both
    return abs(a - b) if not (np.isnan(a) or np.isnan(b)) else float("inf")


def _match(stock: list[dict[str, Any]], ours: list[dict[str, Any]]) -> tuple[int, float]:
    """How many stock masks have a fast mask at IoU >= 0.9, and the worst score gap.

    Among the fast masks at IoU >= 0.9 (near-duplicates, or several empty masks when the
    thresholds are 0), the one with the closest scores is the match.
    """
    matched, worst = 0, 0.0
    for record in stock:
        gaps = [
            max(_gap(float(o[k]), float(record[k])) for k in ("predicted_iou", "stability_score"))
            for o in ours
            if _iou(record["segmentation"], o["segmentation"]) >= 0.9
        ]
        if gaps:
            matched += 1
            worst = max(worst, min(gaps))
    return matched, worst


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "overrides"),
    [
        (0, {}),
        (1, {"points_per_batch": 7}),
        (2, {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}),
        (3, {"crop_n_layers": 1, "points_per_side": 6}),
    ],
)
def test_same_masks_as_stock(shapes_model: Sam, seed: int, overrides: dict[str, Any]) -> None:
    scene = samkit.shapes.make_scene(seed, 120, 160)
    settings = samkit.amg_settings("shapes", **{"points_per_side": 10, **overrides})
    with torch.inference_mode():
        stock = SamAutomaticMaskGenerator(shapes_model, **settings).generate(scene.image)
    ours = FastMaskGenerator(shapes_model, **settings).generate(scene.image)
    assert len(stock) > 0
    assert set(ours[0]) == set(stock[0])
    matched, worst = _match(stock, ours)
    assert matched >= 0.98 * len(stock), (matched, len(stock))
    assert len(ours) <= len(stock) + max(1, len(stock) // 50)
    assert worst <= 1e-3


@pytest.mark.slow  # converts an encoder with OpenVINO (tens of seconds)
def test_same_masks_with_the_fast_encoder(
    shapes_model: Sam, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMKIT_HOME", str(tmp_path))
    # float32: the same model; a bfloat16 or int8 encoder moves the scores by ~1e-3
    monkeypatch.setenv("SAMKIT_FAST_PRECISION", "f32")
    quick = samkit.load_sam("shapes", device="cpu", fast=True)
    scene = samkit.shapes.make_scene(5, 120, 160)
    settings = samkit.amg_settings("shapes", points_per_side=10)
    with torch.inference_mode():
        stock = SamAutomaticMaskGenerator(shapes_model, **settings).generate(scene.image)
    ours = samkit.FastMaskGenerator(quick, **settings).generate(scene.image)
    matched, worst = _match(stock, ours)
    assert matched >= 0.98 * len(stock) and worst <= 1e-3, (matched, len(stock), worst)


@pytest.fixture(scope="module")
def embedded(shapes_model: Sam) -> SamPredictor:
    predictor = SamPredictor(shapes_model)
    with torch.inference_mode():
        predictor.set_image(samkit.shapes.make_scene(2, 120, 160).image)
    return predictor


@pytest.mark.parametrize(("points", "threshold"), [(1, 0.0), (9, 0.5)])
def test_the_decoder_gives_stock_outputs(
    shapes_model: Sam, embedded: SamPredictor, points: int, threshold: float
) -> None:
    """IoU and low-resolution logits as stock's decoder, for one point too; with a
    threshold, the masks of points under it are never asked for."""
    xy = np.random.default_rng(points).uniform([0, 0], [160, 120], size=(points, 2))
    coords = torch.as_tensor(embedded.transform.apply_coords(xy, (120, 160)), dtype=torch.float32)
    stock = MaskGenerator(shapes_model, pred_iou_thresh=threshold, progress=False)
    ours = FastMaskGenerator(shapes_model, pred_iou_thresh=threshold, progress=False)
    stock.predictor = ours.predictor = embedded
    with torch.inference_mode():
        iou_stock, stock_logits = stock.decode_points(coords)
        iou_ours, our_logits = ours.decode_points(coords)
        torch.testing.assert_close(iou_ours, iou_stock, atol=1e-5, rtol=0)
        point_index, mask_index = torch.nonzero(iou_stock > threshold, as_tuple=True)
        assert 0 < len(point_index) <= 3 * points
        if threshold > 0:
            assert len(torch.unique(point_index)) < points, "some points are under it"
        torch.testing.assert_close(
            our_logits(point_index, mask_index),
            stock_logits(point_index, mask_index),
            atol=1e-4,
            rtol=1e-4,
        )


@pytest.mark.slow
def test_nothing_survives_gives_no_records(shapes_model: Sam) -> None:
    scene = samkit.shapes.make_scene(0, 96, 128)
    ours = FastMaskGenerator(shapes_model, points_per_side=4, pred_iou_thresh=1.5).generate(
        scene.image
    )
    assert ours == []


def test_bad_image_is_refused_as_stock(shapes_model: Sam) -> None:
    with pytest.raises(ValueError, match=r"must be an RGB uint8 np.ndarray of shape \(H, W, 3\)"):
        FastMaskGenerator(shapes_model).generate(np.zeros((4, 4), dtype=np.uint8))
