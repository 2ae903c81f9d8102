from __future__ import annotations

import numpy as np
import pytest
import torch

from samkit.finetune.prompts import BOX_NOISE_MAX_PX, jitter_boxes, sample_clicks


def test_box_noise_is_bounded_and_scaled_to_the_input() -> None:
    boxes = torch.tensor([[100.0, 100.0, 300.0, 250.0]]).repeat(500, 1)
    moved = jitter_boxes(boxes, np.random.default_rng(0), input_size=384)
    limit = BOX_NOISE_MAX_PX * 384 / 1024
    shift = (moved - boxes).abs()
    assert shift.max() <= limit + 1e-4 and shift.mean() > 1  # moved, within the limit
    same = jitter_boxes(boxes, np.random.default_rng(0), input_size=384)
    assert torch.equal(moved, same)  # seeded


def test_exact_boxes_stay_and_boxes_stay_in_the_image() -> None:
    boxes = torch.tensor([[0.0, 0.0, 383.0, 383.0], [5.0, 5.0, 50.0, 60.0]])
    assert torch.equal(jitter_boxes(boxes, np.random.default_rng(1), 384, exact=1.0), boxes)
    moved = jitter_boxes(boxes, np.random.default_rng(1), 384)
    assert moved.min() >= 0 and moved.max() <= 384


def test_empty_boxes() -> None:
    assert jitter_boxes(torch.zeros(0, 4), np.random.default_rng(0), 1024).shape == (0, 4)


@pytest.mark.parametrize("seed", range(5))
def test_clicks_land_in_the_region_and_are_labelled_by_the_target(seed: int) -> None:
    target = torch.zeros(2, 16, 16)
    target[0, 2:6, 2:6] = 1
    target[1, 8:14, 8:14] = 1
    rng = np.random.default_rng(seed)
    # a positive click inside each mask
    points, labels = sample_clicks(target > 0.5, target, rng, scale=4.0)
    assert labels.tolist() == [1, 1]
    cells = (points / 4.0).floor().long()
    assert all(target[k, cells[k, 1], cells[k, 0]] == 1 for k in range(2))
    # a corrective click where a prediction took too much: an exclude click
    too_much = torch.ones(2, 16, 16, dtype=torch.bool) & (target < 0.5)
    _, labels = sample_clicks(too_much, target, rng, scale=4.0)
    assert labels.tolist() == [0, 0]


def test_an_empty_region_falls_back_to_the_target_then_the_centre() -> None:
    target = torch.zeros(2, 16, 16)
    target[0, 3, 4] = 1
    points, labels = sample_clicks(
        torch.zeros(2, 16, 16, dtype=torch.bool), target, np.random.default_rng(0), 4.0
    )
    assert points[0].tolist() == [18.0, 14.0] and labels.tolist() == [1, 0]
    assert points[1].tolist() == [34.0, 34.0]
