import numpy as np
import pytest
import supervision as sv
import torch
from segment_anything.modeling import Sam

import samkit
from samkit.evaluation import (
    EVAL_SIZES,
    Report,
    box_mask,
    deepest_point,
    eval_scenes,
    evaluate,
)


def _mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        # a square: its centre
        ((2, 2, 9, 9), (5, 5)),
        # a mask touching the image border: the border counts as outside
        ((0, 0, 5, 5), (2, 2)),
    ],
)
def test_deepest_point_is_inside_and_central(
    box: tuple[int, int, int, int], expected: tuple[int, int]
) -> None:
    mask = _mask((12, 12), box)
    x, y = deepest_point(mask)
    assert mask[int(y), int(x)]
    assert abs(x - expected[0]) <= 1 and abs(y - expected[1]) <= 1


def test_box_mask_is_max_inclusive_like_mask_to_xyxy() -> None:
    mask = _mask((10, 12), (3, 2, 8, 7))
    xyxy = sv.mask_to_xyxy(mask[None])[0].astype(np.float32)
    assert np.array_equal(box_mask(xyxy, (10, 12)), mask)


def test_eval_scenes_alternate_the_non_square_sizes() -> None:
    scenes = eval_scenes(range(4))
    assert [s.image.shape[:2] for s in scenes] == [EVAL_SIZES[i % 2] for i in range(4)]
    assert all(h != w for h, w in EVAL_SIZES)


def test_empty_report_says_nan_not_zero() -> None:
    report = Report()
    assert np.isnan(report.box_miou) and np.isnan(report.amg_recall)


@pytest.mark.slow  # an evaluation run, as the bundled model's below
def test_a_random_model_scores_far_below_the_bar() -> None:
    # the evaluation can fail: an untrained model of the same architecture is poor
    torch.manual_seed(0)
    report = evaluate(samkit.model.build_shapes_sam(), seeds=range(2), amg=False)
    assert report.box_miou < 0.5
    assert len(report.box_ious) == len(report.point_ious) == len(report.baseline_ious)


@pytest.fixture(scope="module")
def shapes_sam() -> Sam:
    return samkit.load_sam("shapes", device="cpu")


@pytest.fixture(scope="module")
def shapes_report(shapes_sam: Sam) -> Report:
    sam = shapes_sam
    with torch.inference_mode():
        return evaluate(sam, seeds=range(1000, 1012), amg=False)


@pytest.mark.slow  # the bundled model on held-out scenes
def test_bundled_model_segments_boxes(shapes_report: Report) -> None:
    # fixed held-out seeds; the full 100-scene figures are in data/models/MODEL_CARD.md
    assert shapes_report.box_miou >= 0.85
    assert shapes_report.box_miou > shapes_report.baseline_miou + 0.1


@pytest.mark.slow  # the bundled model on held-out scenes
def test_bundled_model_segments_single_points(shapes_report: Report) -> None:
    assert shapes_report.point_miou >= 0.8


@pytest.mark.slow  # the bundled model on held-out scenes
def test_bundled_model_finds_shapes_automatically(shapes_sam: Sam) -> None:
    with torch.inference_mode():
        report = evaluate(shapes_sam, seeds=range(2000, 2004), amg=True)
    assert report.amg_recall >= 0.8
