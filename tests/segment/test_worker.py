"""The per-image work: automatic masks and box prompts with the bundled model, PNGs, previews."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from PIL import Image
from pycocotools.coco import COCO

from samkit.boxes import ImageBoxes
from samkit.export import load_mask_png
from samkit.fast.amg import FastMaskGenerator
from samkit.generator import MaskGenerator
from samkit.images import load_image
from samkit.model import load_sam
from samkit.segment import worker as worker_module
from samkit.segment.job import segment_images
from samkit.segment.source import source_stamp
from samkit.segment.spec import STORE_FORMAT, ImageItem, JobSpec
from samkit.segment.store import read_record
from samkit.segment.worker import (
    ImageWorker,
    detections_to_annotations,
    failure_reason,
    mask_bbox,
)
from samkit.settings import amg_settings

from .support import SIZE, decode, mask_iou, scene, scenes_folder


@pytest.mark.slow
def test_png_and_preview_keep_same_names_apart(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for camera, seed in (("cam1", 1), ("cam2", 2)):
        (folder / camera).mkdir(parents=True)
        Image.fromarray(scene(seed).image).save(folder / camera / "0001.png")
    out = tmp_path / "out"
    summary = segment_images(
        [folder], out, model_type="shapes", points_per_side=4, png=True, preview=True,
        progress=False,
    )  # fmt: skip
    assert summary.ok and summary.done == 2
    coco = COCO(str(out / "annotations.json"))
    for image in coco.dataset["images"]:
        stem = image["file_name"].removesuffix(".png")
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        pngs = sorted((out / "masks" / stem).glob("mask_*.png"))
        assert len(pngs) == len(annotations) > 0
        for png, annotation in zip(pngs, annotations, strict=True):
            np.testing.assert_array_equal(load_mask_png(png), decode(annotation))
        preview = load_image(out / "previews" / f"{stem}.jpg")
        assert preview.shape == (*SIZE, 3)
    assert sorted(i["file_name"] for i in coco.dataset["images"]) == [
        "cam1/0001.png",
        "cam2/0001.png",
    ]


@pytest.mark.slow
def test_boxes_from_coco_and_yolo_give_the_same_masks(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    scenes = scenes_folder(folder, 2)
    (folder / "unlisted.png").write_bytes((folder / "0000.png").read_bytes())
    height, width = SIZE
    coco: dict[str, Any] = {"images": [], "annotations": [], "categories": []}
    coco["categories"] = [{"id": 1, "name": "shape"}, {"id": 2, "name": "other"}]
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "classes.txt").write_text("zero\nshape\n")
    for i, made in enumerate(scenes):
        coco["images"].append({"id": i + 1, "file_name": f"{i:04d}.png"})
        lines = []
        for x0, y0, x1, y1 in made.xyxy.tolist():
            coco["annotations"].append(
                {"image_id": i + 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "category_id": 1}
            )
            cx, cy = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height
            lines.append(f"1 {cx} {cy} {(x1 - x0) / width} {(y1 - y0) / height}")
        (labels / f"{i:04d}.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    results = {}
    for name, source in (("coco", tmp_path / "coco.json"), ("yolo", labels)):
        out = tmp_path / f"out_{name}"
        summary = segment_images([folder], out, model_type="shapes", boxes=source, progress=False)
        assert (summary.done, len(summary.failed)) == (2, 1)
        assert summary.failed[0].path.endswith("unlisted.png")
        assert "no boxes" in summary.failed[0].reason
        results[name] = COCO(str(out / "annotations.json"))
    assert results["coco"].dataset["categories"] == coco["categories"]
    assert results["yolo"].dataset["categories"] == [
        {"id": 0, "name": "zero"},
        {"id": 1, "name": "shape"},
    ]
    for i, made in enumerate(scenes):
        per_source = []
        for result in results.values():
            annotations = result.loadAnns(result.getAnnIds(imgIds=i + 1))
            assert [a["category_id"] for a in annotations] == [1] * len(made.masks)
            masks = np.array([decode(a) for a in annotations], dtype=bool)
            per_source.append(masks)
            # the bundled model finds each shape from its box
            ious = [mask_iou(m, t) for m, t in zip(masks, made.masks, strict=True)]
            assert min(ious) > 0.5, ious
        # YOLO's rounding of relative coordinates moves a box by far less than a pixel
        ious = [mask_iou(a, b) for a, b in zip(*per_source, strict=True)]
        assert min(ious) > 0.95, ious


def test_fast_is_passed_on_to_load_sam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, Any]] = []

    class Stop(Exception):
        pass

    def load_sam(model_type: str | None = None, **kwargs: Any) -> Any:
        asked.append(kwargs)
        raise Stop

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
    monkeypatch.setattr(worker_module, "load_sam", load_sam)
    with pytest.raises(Stop):
        segment_images([folder], tmp_path / "o", fast=True, progress=False)
    assert [kwargs.get("fast") for kwargs in asked] == [True]  # never silently ignored


@pytest.mark.parametrize("fast", [False, True])
def test_fast_segments_with_the_fast_mask_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    asked: list[dict[str, Any]] = []
    plain = load_sam("shapes", device="cpu")

    def fake_load_sam(model_type: str | None = None, **kwargs: Any) -> Any:
        asked.append(kwargs)
        return plain

    monkeypatch.setattr(worker_module, "load_sam", fake_load_sam)
    spec = JobSpec(str(tmp_path), "shapes", None, "cpu", fast, "amg", {}, False, False)
    worker = ImageWorker(spec)
    expected = FastMaskGenerator if fast else MaskGenerator
    assert type(worker.generator) is expected
    assert worker.generator is not None and worker.generator.progress is False  # its own bar
    assert [kwargs.get("fast", False) for kwargs in asked] == [fast]


@pytest.fixture(scope="module")
def box_worker(tmp_path_factory: pytest.TempPathFactory) -> ImageWorker:
    out = tmp_path_factory.mktemp("worker_out")
    amg = amg_settings("shapes")
    return ImageWorker(JobSpec(str(out), "shapes", None, "cpu", False, "boxes", amg, False, False))


@pytest.mark.slow
def test_process_writes_the_record_with_its_source(box_worker: ImageWorker, tmp_path: Path) -> None:
    made = scene(3)
    Image.fromarray(made.image).save(tmp_path / "a.png")
    boxes = ImageBoxes(made.xyxy.astype(np.float32), np.array([4, 5], dtype=np.int64))
    item = ImageItem(str(tmp_path / "a.png"), "x/a.png", "key-a", "x/a", boxes.to_json())
    assert box_worker.process(item) is None
    record = read_record(box_worker.out_dir / ".samkit" / "images" / "key-a.json")
    assert record is not None
    assert record["format"] == STORE_FORMAT
    assert (record["file_name"], record["height"], record["width"]) == ("x/a.png", *SIZE)
    assert record["source"] == source_stamp(str(tmp_path / "a.png"))
    assert record["files"] == []  # png and preview were not asked for
    assert [a["category_id"] for a in record["annotations"]] == [4, 5]
    assert [a["prompt_box"] for a in record["annotations"]] == [
        [x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in made.xyxy.astype(float).tolist()
    ]
    assert not (box_worker.out_dir / "masks").exists()  # png and preview were not asked for


def test_an_unreadable_file_is_a_failure_with_no_record(
    box_worker: ImageWorker, tmp_path: Path
) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a PNG")
    for name in ("bad.png", "missing.png"):
        item = ImageItem(str(tmp_path / name), name, f"key-{name}", name, None)
        failure = box_worker.process(item)
        assert failure is not None
        assert failure.path == item.path
        assert failure.reason
        assert not (box_worker.out_dir / ".samkit" / "images" / f"key-{name}.json").exists()


def test_no_boxes_give_no_masks(box_worker: ImageWorker) -> None:
    image = scene(1).image
    empty = ImageBoxes(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    detections = box_worker.segment_boxes(image, empty)
    assert len(detections) == 0
    assert detections.mask is not None and detections.mask.shape == (0, *SIZE)
    assert detections_to_annotations(detections) == []


@pytest.mark.slow
def test_box_scores_are_kept(box_worker: ImageWorker) -> None:
    image = scene(2).image
    boxes = ImageBoxes(
        np.array([[0.1, 0.1, 0.6, 0.7]], np.float32),
        np.array([3], np.int64),
        score=np.array([0.25], np.float32),
        relative=True,
    )
    (annotation,) = detections_to_annotations(box_worker.segment_boxes(image, boxes))
    assert annotation["score"] == 0.25
    assert annotation["category_id"] == 3
    assert annotation["prompt_box"] == pytest.approx([8.0, 6.4, 40.0, 38.4])


def test_detections_to_annotations_of_automatic_masks() -> None:
    mask = np.zeros((2, 6, 8), dtype=bool)
    mask[0, 1:3, 2:6] = True  # 2 rows x 4 columns
    detections = sv.Detections(
        xyxy=sv.mask_to_xyxy(mask).astype(np.float32),
        mask=mask,
        data={
            "predicted_iou": np.array([0.9, 0.8]),
            "stability_score": np.array([0.95, 0.5]),
            "point_coords": np.array([[[3.0, 2.0]], [[0.0, 0.0]]]),
            "crop_box": np.array([[0, 0, 8, 6], [0, 0, 8, 6]]),
        },
    )
    first, second = detections_to_annotations(detections)
    assert (first["area"], first["bbox"], first["iscrowd"]) == (8, [2, 1, 4, 2], 0)
    assert (second["area"], second["bbox"]) == (0, [0, 0, 0, 0])  # an empty mask
    assert first["category_id"] == second["category_id"] == 1
    assert first["point_coords"] == [[3.0, 2.0]]
    assert first["crop_box"] == [0, 0, 8, 6]
    assert (first["predicted_iou"], first["stability_score"]) == (0.9, 0.95)
    assert first["segmentation"]["size"] == [6, 8]
    assert "prompt_box" not in first and "score" not in first


@pytest.mark.parametrize(
    ("pixels", "bbox"),
    [
        ([], [0, 0, 0, 0]),  # empty
        ([(0, 0)], [0, 0, 1, 1]),
        ([(1, 2), (3, 5)], [2, 1, 4, 3]),  # (row, column): from x 2 to 5, y 1 to 3
    ],
)
def test_mask_bbox(pixels: list[tuple[int, int]], bbox: list[int]) -> None:
    mask = np.zeros((4, 6), dtype=bool)
    for row, column in pixels:
        mask[row, column] = True
    assert mask_bbox(mask) == bbox


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ValueError("cannot read x.png"), "cannot read x.png"),
        (OSError(), "OSError"),  # empty: no message, its type instead
    ],
)
def test_failure_reason(error: BaseException, reason: str) -> None:
    assert failure_reason(error) == reason
