"""Text prompts with SAM 3 (small random-weight configuration): ``sv.Detections`` with
the phrase as class name, and ``samkit segment --text`` into a COCO file."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import supervision as sv

from samkit.hf import load
from samkit.hf.sam3 import check_phrases, segment_text

IMAGE = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def sam3() -> Any:
    model = load.load_hf("sam3", weights="small", device="cpu", keep=True)
    yield model
    model.release()


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_threshold_keeps_only_scores_above_it(sam3: load.HfModel) -> None:
    everything = segment_text(sam3, IMAGE, "gato", threshold=0.0)
    cut = float(np.median(everything.confidence))
    kept = segment_text(sam3, IMAGE, "  gato ", threshold=cut)
    assert 0 < len(kept) < len(everything) and (kept.confidence >= cut).all()
    none = segment_text(sam3, IMAGE, "gato", threshold=1.0)
    assert len(none) == 0


@pytest.mark.slow
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
