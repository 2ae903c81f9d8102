from __future__ import annotations

import re
from typing import Any

import pytest
from segment_anything import SamAutomaticMaskGenerator

import samkit
from samkit.model import SHAPES_AMG_SETTINGS

#: segment-anything 1.0's documented defaults of SamAutomaticMaskGenerator.
SAM_DEFAULTS = {
    "points_per_side": 32,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.88,
    "stability_score_thresh": 0.95,
    "stability_score_offset": 1.0,
    "box_nms_thresh": 0.7,
    "crop_n_layers": 0,
    "crop_nms_thresh": 0.7,
    "crop_overlap_ratio": 512 / 1500,
    "crop_n_points_downscale_factor": 1,
    "min_mask_region_area": 0,
}


def test_sam_amg_defaults() -> None:
    assert samkit.settings.sam_amg_defaults() == SAM_DEFAULTS


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # the official models get segment-anything's defaults
        ("vit_h", SAM_DEFAULTS),
        ("vit_l", SAM_DEFAULTS),
        ("vit_b", SAM_DEFAULTS),
        # the shapes model gets its own settings on top of the defaults
        ("shapes", {**SAM_DEFAULTS, **SHAPES_AMG_SETTINGS}),
    ],
)
def test_amg_settings(model: str, expected: dict[str, Any]) -> None:
    assert samkit.amg_settings(model) == expected


def test_amg_settings_follow_samkit_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_MODEL", "shapes")
    assert samkit.amg_settings()["points_per_side"] == SHAPES_AMG_SETTINGS["points_per_side"]
    monkeypatch.setenv("SAMKIT_MODEL", "vit_b")
    assert samkit.amg_settings()["points_per_side"] == 32


def test_amg_settings_are_a_fresh_copy() -> None:
    settings = samkit.amg_settings("shapes")
    settings["points_per_side"] = 1
    assert (
        samkit.amg_settings("shapes")["points_per_side"] == SHAPES_AMG_SETTINGS["points_per_side"]
    )


@pytest.mark.parametrize(
    ("model", "overrides"),
    [
        # nothing changed
        ("vit_b", {}),
        # a smaller batch against GPU memory errors
        ("vit_h", {"points_per_batch": 16}),
        # two changes on top of the shapes settings
        ("shapes", {"min_mask_region_area": 100, "pred_iou_thresh": 0.5}),
    ],
)
def test_amg_settings_overrides(model: str, overrides: dict[str, Any]) -> None:
    assert samkit.amg_settings(model, **overrides) == {**samkit.amg_settings(model), **overrides}


def test_amg_settings_rejects_an_unknown_setting() -> None:
    with pytest.raises(
        ValueError,
        match=r"points_per_sid is not a setting of SamAutomaticMaskGenerator; the settings are "
        r"points_per_side, points_per_batch, ",
    ):
        samkit.amg_settings("vit_b", points_per_sid=16)


def test_amg_settings_build_a_generator() -> None:
    generator = SamAutomaticMaskGenerator(
        samkit.model.build_shapes_sam(), **samkit.amg_settings("shapes")
    )
    assert generator.points_per_batch == SHAPES_AMG_SETTINGS["points_per_batch"]


@pytest.mark.parametrize(
    "model",
    [
        # a misspelt model
        "vit-h",
        # empty
        "",
        # not a string
        7,
    ],
)
def test_amg_settings_rejects(model: Any) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"model_type must be one of 'vit_h', 'vit_l', 'vit_b', 'shapes', but got {model!r}"
        ),
    ):
        samkit.amg_settings(model)


@pytest.mark.parametrize(
    ("model", "overrides", "expected"),
    [
        ("vit_b", {}, 4),  # the variable replaces segment-anything's 32
        ("shapes", {}, 4),  # and the registry's 16
        ("vit_b", {"points_per_side": 8}, 8),  # a setting passed by name still wins
    ],
)
def test_amg_settings_grid_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, model: str, overrides: dict[str, Any], expected: int
) -> None:
    monkeypatch.setenv("SAMKIT_AMG_POINTS_PER_SIDE", "4")
    settings = samkit.amg_settings(model, **overrides)
    assert settings["points_per_side"] == expected
    # nothing else moves
    monkeypatch.delenv("SAMKIT_AMG_POINTS_PER_SIDE")
    plain = samkit.amg_settings(model, **overrides)
    assert {k: v for k, v in settings.items() if k != "points_per_side"} == {
        k: v for k, v in plain.items() if k != "points_per_side"
    }


def test_amg_settings_bad_grid_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMKIT_AMG_POINTS_PER_SIDE", "many")
    with pytest.raises(ValueError, match="SAMKIT_AMG_POINTS_PER_SIDE must be a whole number"):
        samkit.amg_settings("vit_b")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"points_per_side": 0}, "points_per_side must be a whole number of at least 1, but got 0"),
        (
            {"points_per_side": 2.5},
            "points_per_side must be a whole number of at least 1, but got 2.5",
        ),
        (
            {"points_per_batch": 0},
            "points_per_batch must be a whole number of at least 1, but got 0",
        ),
        ({"crop_n_layers": -1}, "crop_n_layers must be a whole number of at least 0, but got -1"),
        (
            {"min_mask_region_area": True},
            "min_mask_region_area must be a whole number of at least 0",
        ),
        ({"pred_iou_thresh": float("nan")}, "pred_iou_thresh must be a finite number, but got nan"),
        (
            {"stability_score_offset": "1"},
            "stability_score_offset must be a finite number, but got '1'",
        ),
        (
            {"stability_score_thresh": 1.5},
            "stability_score_thresh must be from 0 to 1, but got 1.5",
        ),
        ({"crop_overlap_ratio": -0.1}, "crop_overlap_ratio must be from 0 to 1, but got -0.1"),
    ],
)
def test_amg_settings_out_of_range_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        samkit.amg_settings("shapes", **overrides)


def test_segment_images_refuses_a_setting_out_of_range(tmp_path: Any) -> None:
    from samkit.segment.spec import SegmentUsageError

    message = "points_per_batch must be a whole number of at least 1, but got 0"
    with pytest.raises(SegmentUsageError, match=re.escape(message)):
        samkit.segment_images([tmp_path / "in"], tmp_path / "o", points_per_batch=0)
    assert not (tmp_path / "o").exists()
