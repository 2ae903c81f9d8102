from __future__ import annotations

import numpy as np
import pytest
from segment_anything import SamAutomaticMaskGenerator
from segment_anything.modeling import Sam

from samkit.generator import MaskGenerator

#: Settings no mask can pass: what a hard image, strict thresholds or random weights do.
NOTHING_PASSES = {"points_per_side": 2, "pred_iou_thresh": 2.0, "stability_score_thresh": 1.0}


@pytest.mark.slow
@pytest.mark.parametrize("crop_n_layers", [0, 1])  # one crop, and five (the image, 4 crops)
def test_no_mask_gives_an_empty_list(
    shapes_sam: Sam, shapes_image: np.ndarray, crop_n_layers: int
) -> None:
    generator = MaskGenerator(shapes_sam, crop_n_layers=crop_n_layers, **NOTHING_PASSES)
    assert generator.generate(np.array(shapes_image)) == []


@pytest.mark.slow
def test_the_stock_generator_fails_there(shapes_sam: Sam, shapes_image: np.ndarray) -> None:
    # what MaskGenerator is for: with crops and no mask, the stock class raises
    stock = SamAutomaticMaskGenerator(shapes_sam, crop_n_layers=1, **NOTHING_PASSES)
    with pytest.raises(IndexError):
        stock.generate(np.array(shapes_image))


@pytest.mark.parametrize("output_mode", ["binary_mask", "coco_rle"])
@pytest.mark.slow  # runs the stock and samkit generators with crops (a minute)
def test_same_records_as_the_stock_generator(
    shapes_sam: Sam, shapes_image: np.ndarray, output_mode: str
) -> None:
    settings = {
        "points_per_side": 4,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "crop_n_layers": 1,
        "output_mode": output_mode,
    }
    ours = MaskGenerator(shapes_sam, **settings).generate(np.array(shapes_image))
    stock = SamAutomaticMaskGenerator(shapes_sam, **settings).generate(np.array(shapes_image))
    assert ours, "the settings keep masks"
    assert len(ours) == len(stock)
    for mine, theirs in zip(ours, stock, strict=True):
        assert sorted(mine) == sorted(theirs)
        assert mine["crop_box"] == theirs["crop_box"] and mine["bbox"] == theirs["bbox"]
        if output_mode == "coco_rle":
            assert mine["segmentation"] == theirs["segmentation"]
        else:
            np.testing.assert_array_equal(mine["segmentation"], theirs["segmentation"])
