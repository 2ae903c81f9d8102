from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from segment_anything import SamAutomaticMaskGenerator

import samkit
from samkit import tutorial
from samkit.evaluation import SHAPES_AMG_SETTINGS

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
    assert samkit.sam_amg_defaults() == SAM_DEFAULTS


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
        samkit.build_shapes_sam(), **samkit.amg_settings("shapes")
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


# ------------------------------------------------------------------ stopwatch


def test_stopwatch_prints_milliseconds(capsys: pytest.CaptureFixture[str]) -> None:
    with samkit.stopwatch("nap") as timing:
        time.sleep(0.02)
    assert timing.milliseconds >= 20
    printed = capsys.readouterr().out
    assert re.fullmatch(r"nap: \d+\.\d ms\n", printed)
    assert printed == f"{timing}\n"


def test_stopwatch_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    with samkit.stopwatch("", echo=False) as timing:
        pass
    assert timing.milliseconds >= 0
    assert capsys.readouterr().out == ""


def test_stopwatch_rejects_a_non_string_label() -> None:
    with pytest.raises(ValueError, match="label must be a string, but got int"):
        with samkit.stopwatch(5):  # type: ignore[arg-type]
            pass


# ------------------------------------------------------------------ output_dir


def test_output_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAMKIT_OUTPUT_DIR", str(tmp_path / "out"))
    folder = samkit.output_dir("03_mascaras")
    assert folder == tmp_path / "out" / "03_mascaras"
    assert folder.is_dir()


def test_output_dir_in_the_repository(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # from a checkout (a pyproject.toml beside the package): build/outputs, ignored by git
    monkeypatch.delenv("SAMKIT_OUTPUT_DIR", raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setattr(tutorial, "_REPO_ROOT", tmp_path)
    assert samkit.output_dir("x") == tmp_path / "build" / "outputs" / "x"


def test_output_dir_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # an installed package, no checkout: a folder in the current directory
    monkeypatch.delenv("SAMKIT_OUTPUT_DIR", raising=False)
    monkeypatch.setattr(tutorial, "_REPO_ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    assert samkit.output_dir("x") == tmp_path / "samkit_outputs" / "x"


def test_output_dir_in_colab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SAMKIT_OUTPUT_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr(tutorial, "COLAB_HOME", tmp_path / "content")
    assert samkit.output_dir("x") == tmp_path / "content" / "samkit_outputs" / "x"


@pytest.mark.parametrize(
    "name",
    [
        # empty
        "",
        # a path, not a name
        "a/b",
        "../up",
        # hidden
        ".hidden",
        # not a string
        None,
    ],
)
def test_output_dir_rejects(name: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SAMKIT_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"name must be a plain folder name (letters, digits, '_', '-', '.'), but got {name!r}"
        ),
    ):
        samkit.output_dir(name)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ draw_points


def test_draw_points() -> None:
    image = np.zeros((60, 80, 3), np.uint8)
    out = samkit.draw_points(image, [[10, 20], [60, 40]], [1, 0], radius=6)
    # a copy: the input stays black
    assert not image.any()
    assert tuple(out[20, 10]) == tutorial.INCLUDE_COLOR
    assert tuple(out[40, 60]) == tutorial.EXCLUDE_COLOR
    # a white rim around the dot (radius 6, rim to 8; anti-aliased, so nearly white)
    assert (out[20, 10 + 7] > 200).all()
    # nothing far from the clicks
    assert not out[:5, 70:].any()


def test_draw_points_without_points() -> None:
    image = np.full((10, 10, 3), 7, np.uint8)
    out = samkit.draw_points(image, np.zeros((0, 2)), np.zeros((0,), int))
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(
    ("coords", "labels", "kwargs", "message"),
    [
        # one coordinate instead of a pair
        ([[1]], [1], {}, r"point_coords must be finite \(x, y\) pairs of shape \(N, 2\)"),
        # NaN
        ([[1, float("nan")]], [1], {}, "point_coords must be finite"),
        # a label other than 0 and 1
        ([[1, 1]], [2], {}, r"point_labels must be 1 labels of 0 \(exclude\) or 1 \(include\)"),
        # fewer labels than points
        ([[1, 1], [2, 2]], [1], {}, "point_labels must be 2 labels"),
        # a radius of zero
        ([[1, 1]], [1], {"radius": 0}, "radius must be a positive int or None, but got 0"),
    ],
)
def test_draw_points_rejects(
    coords: Any, labels: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.draw_points(np.zeros((5, 5, 3), np.uint8), coords, labels, **kwargs)


def test_draw_points_rejects_a_non_image() -> None:
    with pytest.raises(ValueError, match=r"image must be an RGB uint8 np\.ndarray"):
        samkit.draw_points(np.zeros((5, 5), np.uint8), [[1, 1]], [1])


# ------------------------------------------------------------------ draw_labels


def _boxes(names: list[str] | None) -> sv.Detections:
    count = 2 if names is None else len(names)
    data = {} if names is None else {"class_name": np.array(names, dtype=str)}
    xyxy = np.array([[10, 30, 60, 50], [40, 60, 90, 90]], np.float32)[:count]
    return sv.Detections(xyxy=xyxy.reshape(-1, 4), data=data)


@pytest.mark.parametrize(
    ("detections", "labels"),
    [
        # the detections' class names
        (_boxes(["cup", "spoon"]), None),
        # row numbers when there are no class names
        (_boxes(None), None),
        # labels given
        (_boxes(["cup", "spoon"]), ["a", "b"]),
    ],
)
def test_draw_labels_draws_at_each_box(detections: sv.Detections, labels: Any) -> None:
    image = np.zeros((100, 180, 3), np.uint8)
    out = samkit.draw_labels(image, detections, labels)
    assert not image.any()
    for x0, y0, _, _ in detections.xyxy.astype(int):
        # the label sits just above the box's top-left corner
        assert out[max(0, y0 - 12) : y0, x0 : x0 + 20].any()
    # nowhere near the boxes, nothing is drawn
    assert not out[:, 150:].any()


def test_draw_labels_without_detections() -> None:
    image = np.full((20, 20, 3), 5, np.uint8)
    out = samkit.draw_labels(image, _boxes([]))
    np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize(
    ("detections", "labels", "message"),
    [
        # not detections
        (np.zeros((1, 4)), None, "detections must be sv.Detections, but got ndarray"),
        # one label for two boxes
        (_boxes(None), ["a"], r"labels must be 2 strings, one per detection, but got \['a'\]"),
        # labels that are not strings
        (_boxes(None), [1, 2], "labels must be 2 strings"),
    ],
)
def test_draw_labels_rejects(detections: Any, labels: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.draw_labels(np.zeros((100, 120, 3), np.uint8), detections, labels)
