"""samkit.yolo on its own; read_box_file's use of it is tested in test_boxes.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from samkit import yolo


def test_a_folder_is_read_with_its_class_names(tmp_path: Path) -> None:
    (tmp_path / "cam1").mkdir()
    (tmp_path / "cam1" / "0001.txt").write_text("1 0.5 0.5 0.2 0.4 0.9\n\n")
    (tmp_path / yolo.YOLO_CLASSES_FILE).write_text("cat\ndog\n")
    box_file = yolo.read_yolo_folder(tmp_path)
    assert box_file.kind == "yolo"
    assert box_file.categories == [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}]
    boxes = box_file.boxes["cam1/0001"]
    assert boxes.relative
    assert boxes.xyxy[0].tolist() == pytest.approx([0.4, 0.3, 0.6, 0.7])
    assert boxes.score is not None and boxes.score.tolist() == pytest.approx([0.9])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a 0.5 0.5 0.1 0.1", r"'class cx cy w h \[confidence\]' \(numbers\)"),
        ("-1 0.5 0.5 0.1 0.1", "with a class number from 0 to 2147483647"),
        ("0 1.5 0.5 0.1 0.1", r"relative to the image, in \[0, 1\]"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "a.txt").write_text(f"0 0.5 0.5 0.1 0.1\n{line}\n")
    with pytest.raises(ValueError, match=f"a.txt line 2 must .*{message}"):
        yolo.read_yolo_folder(tmp_path)
