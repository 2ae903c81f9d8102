"""samkit.box_records on its own; reading the files is tested in test_boxes.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from samkit import box_records


def test_image_boxes_from_rows() -> None:
    boxes = box_records.image_boxes([([0, 0, 2, 2], 1, 0.5), ([1, 1, 3, 3], 2, 0.25)], False)
    assert boxes.xyxy.dtype == np.float32 and boxes.xyxy.shape == (2, 4)
    assert boxes.category_id.tolist() == [1, 2]
    assert boxes.score is not None and boxes.score.tolist() == [0.5, 0.25]
    assert box_records.image_boxes([([0, 0, 1, 1], 1, None)], True).score is None


def test_digest_tells_parts_apart() -> None:
    assert box_records.digest([b"ab", b"c"]) != box_records.digest([b"a", b"bc"])
    assert box_records.digest([b"ab"]) == box_records.digest([b"ab"])


def test_assign_matches_whole_paths_then_unique_base_names() -> None:
    empty = box_records.image_boxes([], False)
    box_file = box_records.BoxFile(
        source=Path("boxes.json"),
        kind="coco",
        categories=[],
        boxes={"cam1/0001.jpg": empty, "0002.jpg": empty},
        sha256=box_records.digest([]),
    )
    found = box_file.assign(["cam1/0001.jpg", "cam2/0002.png", "cam3/0003.jpg"])
    assert found["cam1/0001.jpg"] is empty
    assert found["cam2/0002.png"] is empty  # by its base name, without suffix
    assert found["cam3/0003.jpg"] == "no boxes: boxes.json has no entry for 'cam3/0003.jpg'"
