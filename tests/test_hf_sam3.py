"""Text prompts with SAM 3 (small random-weight configuration): ``sv.Detections`` with
the phrase as class name, and ``samkit segment --text`` into a COCO file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from PIL import Image
from pycocotools.coco import COCO

import samkit
from samkit.cli import main
from samkit.hf import load
from samkit.hf.sam3 import check_phrases, segment_text

IMAGE = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def sam3() -> Any:
    model = load.load_hf("sam3", weights="small", device="cpu", keep=True)
    yield model
    model.release()


def test_phrases_become_class_names(sam3: load.HfModel) -> None:
    # random weights score every query near 0.25: threshold 0 keeps all 20 per phrase
    detections = segment_text(sam3, IMAGE, ["gato", "casco amarillo"], threshold=0.0)
    assert isinstance(detections, sv.Detections) and len(detections) == 40
    assert detections.mask.shape == (40, 90, 120) and detections.mask.dtype == bool
    assert detections.xyxy.shape == (40, 4) and detections.confidence.dtype == np.float32
    assert detections.class_id.tolist() == [0] * 20 + [1] * 20
    assert detections.data["class_name"].tolist() == ["gato"] * 20 + ["casco amarillo"] * 20
    first = detections.confidence[:20]
    assert (np.diff(first) <= 0).all()  # each phrase's best first
    labelled = sv.LabelAnnotator().annotate(IMAGE.copy(), detections[:2])
    assert labelled.shape == IMAGE.shape


def test_the_threshold_keeps_only_scores_above_it(sam3: load.HfModel) -> None:
    everything = segment_text(sam3, IMAGE, "gato", threshold=0.0)
    cut = float(np.median(everything.confidence))
    kept = segment_text(sam3, IMAGE, "  gato ", threshold=cut)
    assert 0 < len(kept) < len(everything) and (kept.confidence >= cut).all()
    none = segment_text(sam3, IMAGE, "gato", threshold=1.0)
    assert len(none) == 0


def test_the_phrase_changes_the_answer(sam3: load.HfModel) -> None:
    cat = segment_text(sam3, IMAGE, "gato", threshold=0.0)
    dog = segment_text(sam3, IMAGE, "perro", threshold=0.0)
    assert not np.allclose(cat.confidence, dog.confidence)


@pytest.mark.parametrize(
    ("phrases", "message"),
    [
        ([], "phrases must be a phrase or a list of phrases, but got []"),
        (["gato", ""], "phrase 1 must be a non-empty string, but got ''"),
        (["gato", 3], "phrase 1 must be a non-empty string, but got 3"),
        (["gato", "gato "], "phrases must be distinct, but 'gato' is given twice"),
    ],
)
def test_bad_phrases_are_refused(phrases: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_phrases(phrases)


def test_bad_inputs_are_refused(sam3: load.HfModel) -> None:
    with pytest.raises(
        ValueError, match=re.escape("threshold must be a number from 0 to 1, but got 2")
    ):
        segment_text(sam3, IMAGE, "gato", threshold=2)
    with pytest.raises(ValueError, match=re.escape("image must be RGB uint8 of shape (H, W, 3)")):
        segment_text(sam3, IMAGE[..., 0], "gato")
    with pytest.raises(ValueError, match=r"segment_text needs SAM 3.*but got 'sam2\.1_tiny'"):
        segment_text(
            load.load_hf("sam2.1_tiny", weights="small", device="cpu", keep=True), IMAGE, "gato"
        )


def test_segment_text_writes_one_category_per_phrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMKIT_HF_WEIGHTS", "small")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(IMAGE).save(photos / "a.png")
    Image.fromarray(IMAGE[:60, :80]).save(photos / "b.jpg")
    out = tmp_path / "out"
    args = ["segment", str(photos), "--out", str(out), "--device", "cpu", "--no-progress"]
    status = main([*args, "--text", "gato", "--text", "casco amarillo", "--text-threshold", "0.2"])
    assert status == 0, capsys.readouterr().err
    coco = COCO(str(out / "annotations.json"))
    assert coco.dataset["categories"] == [
        {"id": 1, "name": "gato"},
        {"id": 2, "name": "casco amarillo"},
    ]
    assert sorted(i["file_name"] for i in coco.dataset["images"]) == ["a.png", "b.jpg"]
    annotations = coco.dataset["annotations"]
    assert {a["category_id"] for a in annotations} == {1, 2}
    assert all(a["score"] >= 0.2 for a in annotations)
    image = coco.dataset["images"][0]
    first = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))[0]
    mask = samkit.export.rle_to_masks([first["segmentation"]])[0]  # quiets NumPy 2
    assert mask.shape == (image["height"], image["width"])
    settings = json.loads((out / ".samkit" / "settings.json").read_text())
    assert settings["texts"] == ["gato", "casco amarillo"] and settings["mode"] == "text"
    # the same command again resumes: nothing to do
    assert (
        main([*args, "--text", "gato", "--text", "casco amarillo", "--text-threshold", "0.2"]) == 0
    )
    assert "done 0, skipped 2, failed 0" in capsys.readouterr().out
    load.release_all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--text", "gato", "--model", "vit_b"], "text prompts need model 'sam3', but got 'vit_b'"),
        (["--text", "gato", "--points-per-side", "4"], "text prompts take no points_per_side"),
        (
            ["--text", "gato", "--text-threshold", "1.5"],
            "text_threshold must be from 0 to 1, but got 1.5",
        ),
        (["--text", " "], "--text: phrase 0 must be a non-empty string, but got ' '"),
    ],
)
def test_segment_text_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    Image.fromarray(IMAGE).save(tmp_path / "a.png")
    status = main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), *extra])
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
