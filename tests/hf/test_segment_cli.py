"""``samkit segment`` with SAM 2.1 (box prompts) and SAM 3 (``--text``), small random
configurations: a valid COCO file (pycocotools loads it), one category per phrase.

Each run loads its own model and releases the ones loaded before, so these tests live
apart from the module fixtures of test_sam2.py and test_sam3.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

import samkit
from samkit.cli import main
from samkit.hf import load
from samkit.hf.sam2 import load_predictor

IMAGE = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
BOX = np.array([20, 10, 110, 90], dtype=np.float32)


@pytest.mark.slow
def test_segment_boxes_with_sam2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMKIT_HF_WEIGHTS", "small")
    Image.fromarray(IMAGE).save(tmp_path / "a.png")
    boxes = {
        "images": [{"id": 1, "file_name": "a.png", "width": 160, "height": 120}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 10, 90, 80]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [5, 5, 30, 30]},
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    out = tmp_path / "out"
    status = main(
        [
            "segment", str(tmp_path / "a.png"), "--out", str(out), "--model", "sam2.1_tiny",
            "--boxes", str(tmp_path / "boxes.json"), "--device", "cpu", "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    coco = COCO(str(out / "annotations.json"))
    annotations = coco.dataset["annotations"]
    assert [a["prompt_box"] for a in annotations] == [[20, 10, 90, 80], [5, 5, 30, 30]]
    assert all(0 <= a["stability_score"] <= 1 for a in annotations)
    # the masks are those of the predictor for the same boxes
    predictor = load_predictor("sam2.1_tiny", weights="small", device="cpu", keep=True)
    predictor.set_image(IMAGE)
    expected = predictor.predict(box=BOX, multimask_output=False)[0][0]
    decoded = samkit.export.rle_to_masks([annotations[0]["segmentation"]])[0]
    np.testing.assert_array_equal(decoded, expected)
    load.release_all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "sam2.1_tiny"], "sam2.1_tiny (Hugging Face transformers) answers --boxes"),
        (["--model", "sam3"], "sam3 (Hugging Face transformers) answers --text"),
    ],
)
def test_segment_automatic_masks_need_segment_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    Image.fromarray(IMAGE).save(tmp_path / "a.png")
    assert main(["segment", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
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
