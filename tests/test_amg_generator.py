"""``samkit.amg.generator.MaskGenerator`` on the bundled model: stock's masks, bounded memory.

Also what reaches the model from every samkit path that prompts it: float32 points and
boxes, integer labels, never float64 (which Apple's MPS refuses).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.modeling import Sam

import samkit
from samkit.amg.generator import MaskGenerator
from samkit.amg.steps import empty_mask_data
from samkit.fast.amg import FastMaskGenerator
from samkit.rle import rle_to_masks
from tools.bench_memory import matched_fraction, measure_in_child

GENERATORS = [MaskGenerator, FastMaskGenerator]


@pytest.fixture(scope="module")
def sam() -> Sam:
    return samkit.load_sam("shapes", device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 8])
def test_same_masks_as_stock_with_the_default_settings(sam: Sam, seed: int) -> None:
    # about half a megapixel: stock upscales 192 masks of a batch to it (~0.4 GB)
    image = samkit.shapes.make_scene(seed, 600, 800).image
    settings = samkit.amg_settings("shapes")
    with torch.inference_mode():
        stock = SamAutomaticMaskGenerator(sam, **settings).generate(image)
    ours = MaskGenerator(sam, **settings).generate(image)
    assert len(stock) >= 3, "the scene has shapes the model finds"
    assert matched_fraction(stock, ours) >= 0.98
    assert matched_fraction(ours, stock) >= 0.98, "no mask that stock does not give"
    assert [sorted(record) for record in ours] == [sorted(record) for record in stock[: len(ours)]]


@pytest.mark.slow
@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize(("crop_n_layers", "batches"), [(0, 3), (1, 15)])
def test_a_progress_bar_over_the_batches_unless_turned_off(
    sam: Sam,
    generator: type[MaskGenerator],
    crop_n_layers: int,
    batches: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    image = samkit.shapes.make_scene(4, 60, 80).image
    # 16 points a crop in batches of 6: 3 batches, and 3 more in each of 4 crops
    settings = samkit.amg_settings(
        "shapes", points_per_side=4, points_per_batch=6, crop_n_layers=crop_n_layers
    )
    decoded: list[int] = []

    def no_model(self: MaskGenerator, points: np.ndarray, *args: Any) -> Any:
        decoded.append(len(points))  # the bar is about the batches, not what they find
        return empty_mask_data(crop_boxes=False)

    monkeypatch.setattr(generator, "_process_batch", no_model)
    monkeypatch.setattr(SamPredictor, "set_image", lambda self, image: None)
    assert generator(sam, **settings).generate(image) == []
    err = capsys.readouterr().err
    assert "Máscaras automáticas" in err
    assert f"{batches}/{batches} [" in err  # every batch counted, the whole run in one bar
    assert len(decoded) == batches
    assert generator(sam, progress=False, **settings).generate(image) == []
    assert capsys.readouterr().err == ""
    assert len(decoded) == 2 * batches


@pytest.mark.parametrize("generator", GENERATORS)
def test_output_modes_hold_the_same_masks(sam: Sam, generator: type[MaskGenerator]) -> None:
    image = samkit.shapes.make_scene(4, 120, 160).image
    settings = samkit.amg_settings("shapes", points_per_side=6)
    binary = generator(sam, **settings).generate(image)
    uncompressed = generator(sam, output_mode="uncompressed_rle", **settings).generate(image)
    coco = generator(sam, output_mode="coco_rle", **settings).generate(image)
    assert len(binary) == len(uncompressed) == len(coco) > 0
    for as_mask, as_rle, as_coco in zip(binary, uncompressed, coco, strict=True):
        assert as_rle["segmentation"]["size"] == list(image.shape[:2])
        assert sum(as_rle["segmentation"]["counts"]) == image.shape[0] * image.shape[1]
        decoded = rle_to_masks([as_coco["segmentation"]])[0]
        np.testing.assert_array_equal(decoded, as_mask["segmentation"])
        assert as_mask["area"] == as_rle["area"] == int(decoded.sum())


#: Settings under which a blank image must give no mask and no traceback.
BLANK_SETTINGS = [
    {},  # the bundled model's defaults
    {"crop_n_layers": 1, "pred_iou_thresh": 0.999},  # segment-anything issue 614
    {"crop_n_layers": 2, "stability_score_thresh": 0.9999},
    {"crop_n_layers": 1, "min_mask_region_area": 100},
    {"crop_n_layers": 1, "crop_n_points_downscale_factor": 2, "output_mode": "coco_rle"},
]


@pytest.fixture(scope="module")
def remembering_sam() -> Sam:
    """The bundled model, its image encoder remembering each input it has embedded.

    The blank-image cases embed the same crops again and again (both generators, the
    same crop layers under several settings); the encoder is deterministic, so each
    distinct input is embedded once.
    """
    model = samkit.load_sam("shapes", device="cpu")
    encode = model.image_encoder.forward
    seen: dict[tuple[tuple[int, ...], bytes], torch.Tensor] = {}

    def remembered(x: torch.Tensor) -> torch.Tensor:
        key = (tuple(x.shape), hashlib.sha256(x.detach().cpu().numpy().tobytes()).digest())
        if key not in seen:
            seen[key] = encode(x)
        return seen[key]

    model.image_encoder.forward = remembered  # type: ignore[method-assign]
    return model


@pytest.mark.slow
@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize("settings", BLANK_SETTINGS)
@pytest.mark.parametrize("gray", [0, 128, 255])
def test_a_blank_image_gives_no_mask(
    remembering_sam: Sam, generator: type[MaskGenerator], settings: dict[str, Any], gray: int
) -> None:
    sam = remembering_sam
    image = np.full((90, 120, 3), gray, np.uint8)
    given = {"points_per_side": 4, **settings}
    output_mode = given.pop("output_mode", "binary_mask")
    chosen = samkit.amg_settings("shapes", **given)
    assert generator(sam, output_mode=output_mode, **chosen).generate(image) == []


@pytest.mark.slow
def test_every_candidate_kept_and_cleaned_matches_stock(sam: Sam) -> None:
    # no threshold: every candidate reaches the small-region cleaning, as in stock
    image = samkit.shapes.make_scene(6, 96, 128).image
    settings = {
        "points_per_side": 3,
        "pred_iou_thresh": 0.0,
        "stability_score_thresh": 0.0,
        "min_mask_region_area": 60,
        "output_mode": "uncompressed_rle",
    }
    with torch.inference_mode():
        stock = SamAutomaticMaskGenerator(sam, **settings).generate(image)
    ours = MaskGenerator(sam, **settings).generate(image)
    assert len(stock) > 0
    assert [r["segmentation"] for r in ours] == [r["segmentation"] for r in stock]
    assert [r["bbox"] for r in ours] == [r["bbox"] for r in stock]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        # an output mode segment-anything does not know
        ({"output_mode": "png"}, "output_mode must be one of binary_mask, uncompressed_rle, "),
        # both a grid size and explicit grids
        (
            {"point_grids": [np.zeros((1, 2))]},
            "give exactly one of points_per_side and point_grids, but got points_per_side=32",
        ),
        # neither
        ({"points_per_side": None}, "give exactly one of points_per_side and point_grids"),
        # no point per batch
        ({"points_per_batch": 0}, "points_per_batch must be a whole number from 1 up, but got 0"),
        # a fractional crop layer count
        ({"crop_n_layers": 1.5}, "crop_n_layers must be a whole number from 0 up, but got 1.5"),
    ],
)
def test_bad_settings_are_refused(sam: Sam, settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        MaskGenerator(sam, **settings)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_batch_times_the_photo() -> None:
    # ~1 MP: stock holds 192 float32 masks of the photo at once (about 1.5 GB here);
    # samkit holds one chunk (at most 256 MB) and the output (a few MB)
    row = measure_in_child("samkit", 866, 1155)
    assert row["masks"] > 3, "a scene with masks: survivors are upscaled"
    assert row["peak_bytes"] < 0.75 * 1024**3, row


# --- what reaches the model -------------------------------------------------------


@pytest.fixture
def model_inputs(sam: Sam, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Record every tensor given to the prompt encoder and the mask decoder."""
    seen: list[tuple[str, Any]] = []

    def record(where: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            seen.append((where, value.dtype))
        elif isinstance(value, tuple | list):
            for index, item in enumerate(value):
                record(f"{where}[{index}]", item)

    for module in (sam.prompt_encoder, sam.mask_decoder):
        forward = module.forward

        def wrapped(*args: Any, _forward: Any = forward, _name: Any = module, **kwargs: Any) -> Any:
            name = type(_name).__name__
            for index, value in enumerate(args):
                record(f"{name} arg {index}", value)
            for key, value in kwargs.items():
                record(f"{name} {key}", value)
            return _forward(*args, **kwargs)

        monkeypatch.setattr(module, "forward", wrapped)
    yield seen


def _no_float64(seen: list[tuple[str, Any]]) -> None:
    assert seen, "the model was prompted"
    assert [where for where, dtype in seen if dtype == torch.float64] == []
    points = [dtype for where, dtype in seen if where.startswith("PromptEncoder points[0]")]
    labels = [dtype for where, dtype in seen if where.startswith("PromptEncoder points[1]")]
    assert set(points) <= {torch.float32} and set(labels) <= {torch.int32, torch.int64}


@pytest.mark.slow
@pytest.mark.parametrize("generator", GENERATORS)
def test_generators_prompt_with_float32(
    sam: Sam, model_inputs: list[tuple[str, Any]], generator: type[MaskGenerator]
) -> None:
    image = samkit.shapes.make_scene(2, 96, 128).image
    generator(sam, points_per_side=4, crop_n_layers=1).generate(image)
    assert any(where.startswith("PromptEncoder points[0]") for where, _ in model_inputs)
    _no_float64(model_inputs)


@pytest.mark.slow
def test_prompt_helpers_with_the_predictor_prompt_with_float32(
    sam: Sam, model_inputs: list[tuple[str, Any]]
) -> None:
    sample = samkit.sample_image("coffee", model_type="shapes")
    predictor = SamPredictor(sam)
    predictor.set_image(sample.image)
    box = samkit.bboxes_to_xyxy([sample.default_box], image_shape=sample.image.shape[:2])
    coords, labels = samkit.points_to_prompt([(50, 60)], exclude=[(5, 5)])
    predictor.predict(point_coords=coords, point_labels=labels, box=box[0])
    boxes = predictor.transform.apply_boxes_torch(torch.as_tensor(box), sample.image.shape[:2])
    predictor.predict_torch(None, None, boxes=boxes, multimask_output=False)
    assert {where for where, _ in model_inputs} >= {
        "PromptEncoder points[0]",
        "PromptEncoder boxes",
    }
    _no_float64(model_inputs)


@pytest.mark.slow
def test_live_segmenter_and_segment_boxes_prompt_with_float32(
    sam: Sam,
    model_inputs: list[tuple[str, Any]],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from samkit.segment import worker as worker_module
    from samkit.segment.spec import ImageItem, JobSpec

    sample = samkit.sample_image("coffee", model_type="shapes")
    live = samkit.LiveSegmenter(SamPredictor(sam), sample.image, box=sample.default_box)
    live.points, live.labels = [[50.5, 60.25]], [1]  # points added: the logits go back in
    assert live.used_mask_input
    monkeypatch.setattr(worker_module, "load_sam", lambda *args, **kwargs: sam)
    spec = JobSpec(str(tmp_path), "shapes", None, "cpu", False, "boxes", {}, False, False)
    boxes = {"xyxy": [[0.1, 0.1, 0.6, 0.7]], "category_id": [1], "relative": True}
    item = ImageItem("coffee.png", "coffee.png", "key", "coffee", boxes=boxes)
    assert len(worker_module.ImageWorker(spec).segment(sample.image, item)) == 1
    assert {"PromptEncoder masks", "PromptEncoder boxes"} <= {where for where, _ in model_inputs}
    _no_float64(model_inputs)
