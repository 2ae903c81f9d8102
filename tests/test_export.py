from __future__ import annotations

import errno
import json
import os
import re
import stat
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import supervision as sv
from PIL import Image
from pycocotools import mask as coco_mask

import samkit
from samkit import export, files
from samkit.export import COCO_RLE_FORMAT


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def _masks(*pixels: tuple[int, int], shape: tuple[int, int] = (3, 4)) -> np.ndarray:
    """One mask per (row, col) pixel set to True, on a (H, W) canvas."""
    masks = np.zeros((len(pixels), *shape), dtype=bool)
    for i, (row, col) in enumerate(pixels):
        masks[i, row, col] = True
    return masks


def _random_masks(count: int, shape: tuple[int, int] = (37, 53), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *shape)) > 0.6


# ------------------------------------------------------------------ masks_to_rle / rle_to_masks


@pytest.mark.parametrize(
    ("masks", "expected"),
    [
        # no masks at all
        (np.zeros((0, 2, 3), bool), []),
        # a full 2x3 mask: 0 zeros, then 6 ones (COCO counts start with a run of zeros)
        (np.ones((1, 2, 3), bool), [{"size": [2, 3], "counts": "06"}]),
        # an empty mask: 6 zeros
        (np.zeros((1, 2, 3), bool), [{"size": [2, 3], "counts": "6"}]),
        # column-major order: pixel (row 1, col 2) of a 3x4 mask is the 8th, so 7 zeros,
        # 1 one, 4 zeros; the second mask is the first column
        (
            np.stack([_masks((1, 2))[0], np.pad(np.ones((3, 1), bool), ((0, 0), (0, 3)))]),
            [{"size": [3, 4], "counts": "714"}, {"size": [3, 4], "counts": "039"}],
        ),
        # 0/1 integers are accepted as masks
        (np.ones((1, 2, 3), np.uint8), [{"size": [2, 3], "counts": "06"}]),
    ],
)
def test_masks_to_rle(masks: np.ndarray, expected: list[dict[str, Any]]) -> None:
    assert samkit.export.masks_to_rle(masks) == expected


@pytest.mark.parametrize(
    "masks",
    [
        # one random mask
        _random_masks(1),
        # several random masks of an odd, non-square size
        _random_masks(5, shape=(41, 17), seed=3),
        # a mask that touches every border
        np.pad(np.zeros((8, 8), bool), 1, constant_values=True)[np.newaxis],
    ],
)
def test_rle_round_trip(masks: np.ndarray) -> None:
    decoded = samkit.export.rle_to_masks(samkit.export.masks_to_rle(masks))
    assert decoded.dtype == np.bool_
    np.testing.assert_array_equal(decoded, masks)


def test_rle_to_masks_of_nothing() -> None:
    # the empty list gives an empty stack
    assert samkit.export.rle_to_masks([]).shape == (0, 0, 0)


@pytest.mark.parametrize(
    ("masks", "message"),
    [
        # a single 2D mask is not a stack of masks
        ("not an array", "expected sv.Detections with masks or a bool array"),
        # floats are not masks
        (np.ones((1, 2, 3), np.float32), "masks must be boolean"),
        # 4D is not (N, H, W)
        (np.ones((1, 1, 2, 3), bool), r"masks must have shape \(N, H, W\)"),
        # zero-sized images
        (np.ones((1, 0, 3), bool), r"masks must have shape \(N, H, W\) with H, W > 0"),
    ],
)
def test_masks_to_rle_rejects(masks: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.export.masks_to_rle(masks)


@pytest.mark.parametrize(
    ("rles", "message"),
    [
        # not a list
        ({"size": [2, 3], "counts": "06"}, "rles must be a list of RLE dicts, but got dict"),
        # a dict without counts
        ([{"size": [2, 3]}], "RLE 0 must be a dict with keys 'size' and 'counts'"),
        # a bad size
        ([{"size": [2], "counts": "06"}], r"RLE 0 key 'size' must be \[H, W\] with H, W > 0"),
        # uncompressed counts (a list) are not what save_coco_rle writes
        ([{"size": [2, 3], "counts": [0, 6]}], "RLE 0 key 'counts' must be a compressed"),
        # sizes that differ
        (
            [{"size": [2, 3], "counts": "06"}, {"size": [3, 2], "counts": "06"}],
            r"all RLEs must have the same size, but got \[\(2, 3\), \(3, 2\)\]",
        ),
    ],
)
def test_rle_to_masks_rejects(rles: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.export.rle_to_masks(rles)


# ------------------------------------------------------------------ save_coco_rle / load_coco_rle


def _detections(count: int, with_scores: bool = True, names: bool = True) -> sv.Detections:
    masks = _random_masks(count, seed=count)
    return sv.Detections(
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32).reshape(-1, 4),
        mask=masks,
        confidence=np.linspace(0.9, 0.5, count).astype(np.float32) if with_scores else None,
        data={"class_name": np.array([f"thing{i}" for i in range(count)])} if names else {},
    )


@pytest.mark.parametrize(
    ("detections", "has_scores", "has_names"),
    [
        # no detections: an empty file that reads back as empty detections
        (_detections(0), False, False),
        # one detection with a score and a class name
        (_detections(1), True, True),
        # several detections without scores or names
        (_detections(4, with_scores=False, names=False), False, False),
        # a plain bool array of masks
        (_random_masks(3, seed=9), False, False),
    ],
)
def test_coco_rle_round_trip(
    tmp_path: Path, detections: Any, has_scores: bool, has_names: bool
) -> None:
    path = samkit.save_coco_rle(detections, tmp_path / "masks.json", image_name="scene.png")
    masks = detections.mask if isinstance(detections, sv.Detections) else detections
    restored = samkit.load_coco_rle(path)
    assert restored.mask is not None
    assert restored.mask.shape == masks.shape
    np.testing.assert_array_equal(restored.mask, masks)
    np.testing.assert_array_equal(restored.xyxy, sv.mask_to_xyxy(masks).reshape(-1, 4))
    if has_scores:
        np.testing.assert_allclose(restored.confidence, detections.confidence)
    else:
        assert restored.confidence is None
    if has_names:
        assert restored.data["class_name"].tolist() == detections.data["class_name"].tolist()
    else:
        assert "class_name" not in restored.data


def test_coco_rle_file_content(tmp_path: Path) -> None:
    # one pixel at (row 1, col 2) of a 3x4 image, with a score and a class name
    detections = sv.Detections(
        xyxy=np.array([[2, 1, 2, 1]], np.float32),
        mask=_masks((1, 2)),
        confidence=np.array([0.75], np.float32),
        data={"class_name": np.array(["dot"])},
    )
    path = samkit.save_coco_rle(detections, tmp_path / "one.json", image_name="dot.png")
    assert json.loads(path.read_text()) == {
        "format": COCO_RLE_FORMAT,
        "image": {"file_name": "dot.png", "height": 3, "width": 4},
        "annotations": [
            {
                "id": 0,
                "segmentation": {"size": [3, 4], "counts": "714"},
                "area": 1,
                "bbox": [2, 1, 1, 1],
                "score": 0.75,
                "class_name": "dot",
            }
        ],
    }
    # written through a temporary file that is gone once renamed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.json"]


def test_save_coco_rle_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "masks.json"
    samkit.save_coco_rle(_random_masks(3), path)
    samkit.save_coco_rle(_random_masks(1), path)
    assert len(samkit.load_coco_rle(path)) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # a suffix other than .json
        ({"path": "masks.txt"}, ValueError, r"path must end in \.json, but got 'masks\.txt'"),
        # not a path
        ({"path": 3}, ValueError, "path must be a file path, but got 3"),
        # an image name that is not a string
        ({"image_name": 5}, ValueError, "image_name must be a string or None, but got 5"),
        # a folder that does not exist
        ({"path": "missing/masks.json"}, FileNotFoundError, "folder not found"),
        # detections without masks
        (
            {"detections": sv.Detections(xyxy=np.zeros((1, 4), np.float32))},
            ValueError,
            "detections have no masks",
        ),
    ],
)
def test_save_coco_rle_rejects(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"detections": _random_masks(1), "path": "masks.json"}
    arguments.update(kwargs)
    if isinstance(arguments["path"], str):
        arguments["path"] = tmp_path / arguments["path"]
    with pytest.raises(error, match=message):
        samkit.save_coco_rle(**arguments)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # not JSON at all
        ("{not json", "is not a JSON file"),
        # JSON from another tool
        ('{"annotations": []}', "must be written by samkit.save_coco_rle"),
        # the right format, but no annotations list
        (json.dumps({"format": COCO_RLE_FORMAT, "image": {}}), "must hold an 'image' object"),
        # an annotation without its segmentation
        (
            json.dumps({"format": COCO_RLE_FORMAT, "image": {}, "annotations": [{"id": 0}]}),
            "annotation 0 is missing key 'segmentation'",
        ),
        # counts that are not a valid RLE
        (
            json.dumps(
                {
                    "format": COCO_RLE_FORMAT,
                    "image": {},
                    "annotations": [{"segmentation": {"size": [2, 3], "counts": "0;"}}],
                }
            ),
            "cannot decode RLE counts",
        ),
    ],
)
def test_load_coco_rle_rejects(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "masks.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        samkit.load_coco_rle(path)


def test_load_coco_rle_bounds_the_total_it_decodes(tmp_path: Path) -> None:
    # one 13000x13000 mask is allowed alone, 8 of them (1.35e9 pixels) are not: a few
    # hundred bytes that would need gigabytes
    small = samkit.export.masks_to_rle(np.zeros((1, 4, 5), dtype=bool))[0]
    assert small["counts"] == _empty_counts(20)  # the encoding is pycocotools'
    big = {"size": [13000, 13000], "counts": _empty_counts(13000 * 13000)}
    content = {
        "format": COCO_RLE_FORMAT,
        "image": {"height": 13000, "width": 13000},
        "annotations": [{"segmentation": big} for _ in range(8)],
    }
    path = tmp_path / "masks.json"
    path.write_text(json.dumps(content))
    assert path.stat().st_size < 2000
    message = re.escape(
        "8 masks of 13000x13000 are 1,352,000,000 pixels in all, more than the "
        "1,073,741,824 samkit decodes at once (each is checked alone too): decode them in "
        "smaller groups"
    )
    with pytest.raises(ValueError, match=message):
        samkit.load_coco_rle(path)


def test_load_coco_rle_refuses_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "masks.json"
    path.write_text('{"annotations": ' + "[" * 100_000)
    with pytest.raises(ValueError, match=r"masks.json is nested too deeply to be read"):
        samkit.load_coco_rle(path)


def _empty_counts(pixels: int) -> str:
    """The compressed COCO counts of one run of ``pixels`` zeros (as pycocotools writes)."""
    out, value = [], pixels
    while True:
        group, value = value & 0x1F, value >> 5
        more = not (value == 0 and not group & 0x10)
        out.append(chr(48 + (group | (0x20 if more else 0))))
        if not more:
            return "".join(out)


def test_load_coco_rle_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="COCO RLE file not found"):
        samkit.load_coco_rle(tmp_path / "nothing.json")


# ------------------------------------------------------------------ PNG masks


@pytest.mark.parametrize(
    ("count", "prefix"),
    [
        # no masks: nothing written
        (0, "mask"),
        # one mask
        (1, "mask"),
        # several masks, a prefix with a dot and a dash
        (3, "coffee.v2-final"),
    ],
)
def test_mask_pngs_round_trip(tmp_path: Path, count: int, prefix: str) -> None:
    detections = _detections(count)
    folder = tmp_path / "nested" / "png"
    paths = samkit.save_mask_pngs(detections, folder, prefix=prefix)
    assert [p.name for p in paths] == [f"{prefix}_{i:03d}.png" for i in range(count)]
    assert sorted(folder.iterdir()) == sorted(paths)
    for path, mask in zip(paths, detections.mask, strict=True):
        with Image.open(path) as picture:
            assert picture.mode == "L"
            assert set(np.unique(np.asarray(picture)).tolist()) <= {0, 255}
        np.testing.assert_array_equal(samkit.export.load_mask_png(path), mask)


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        # empty
        ("", "prefix must start with a letter or digit"),
        # a path separator would write elsewhere
        ("../up", "prefix must start with a letter or digit"),
        # spaces are not allowed
        ("my mask", "but got 'my mask'"),
    ],
)
def test_save_mask_pngs_rejects_prefix(tmp_path: Path, prefix: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        samkit.save_mask_pngs(_random_masks(1), tmp_path / "png", prefix=prefix)
    assert not (tmp_path / "png").exists()


def test_save_mask_pngs_rejects_a_file_as_folder(tmp_path: Path) -> None:
    file = tmp_path / "taken"
    file.write_text("x")
    with pytest.raises(ValueError, match=r"folder must be a folder, but .* is a file"):
        samkit.save_mask_pngs(_random_masks(1), file)


@pytest.mark.parametrize(
    ("name", "content", "error", "message"),
    [
        # no such file
        ("missing.png", None, FileNotFoundError, "PNG mask not found"),
        # a text file with a .png name
        ("fake.png", b"not a png", ValueError, "cannot read .* as a PNG image"),
        # another suffix
        ("mask.jpg", b"", ValueError, r"path must end in \.png"),
    ],
)
def test_load_mask_png_rejects(
    tmp_path: Path, name: str, content: bytes | None, error: type[Exception], message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        samkit.export.load_mask_png(path)


# ------------------------------------------------------------------ hostile and broken files


def _coco_file(path: Path, segmentations: list[Any], ids: list[Any] | None = None) -> Path:
    annotations = [
        {"id": i if ids is None else ids[i], "segmentation": segmentation}
        for i, segmentation in enumerate(segmentations)
    ]
    content = {"format": COCO_RLE_FORMAT, "image": {}, "annotations": annotations}
    path.write_text(json.dumps(content))
    return path


def _run_counts(size: list[int], runs: list[int]) -> str:
    """The compressed counts string pycocotools writes for these run lengths."""
    rle = coco_mask.frPyObjects({"size": size, "counts": runs}, *size)
    return str(rle["counts"].decode("ascii"))


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        # the hostile case: 100000 x 100000 declared, counts "0" (one run of no pixels)
        (
            {"size": [100000, 100000], "counts": "0"},
            "RLE 0: cannot decode RLE counts: they describe 0 pixels, but its size "
            "[100000, 100000] has 10,000,000,000 (the file is corrupt or cut off)",
        ),
        # a real 2x3 mask's counts under a larger declared size
        (
            {"size": [3, 3], "counts": "06"},
            "RLE 0: cannot decode RLE counts: they describe 6 pixels, but its size [3, 3] "
            "has 9 (the file is corrupt or cut off)",
        ),
        # counts that really describe 20000 x 20000 pixels: more than Pillow opens
        (
            {"size": [20000, 20000], "counts": _run_counts([20000, 20000], [400_000_000])},
            "RLE 0 declares a 20000x20000 mask (400,000,000 pixels), more than the "
            "178,956,970 pixels samkit decodes (the limit Pillow sets for images)",
        ),
    ],
)
def test_rle_with_huge_declared_size_is_refused(
    monkeypatch: pytest.MonkeyPatch, rle: dict[str, Any], message: str
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("pycocotools was asked to decode (and allocate) it")

    monkeypatch.setattr(samkit.rle.coco_mask, "decode", never)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=exactly(message)):
            samkit.export.rle_to_masks([rle])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # nothing near the declared size was allocated


def test_coco_file_with_huge_declared_size_is_refused_by_annotation(tmp_path: Path) -> None:
    path = _coco_file(
        tmp_path / "bomb.json",
        [{"size": [2, 3], "counts": "06"}, {"size": [100000, 100000], "counts": "0"}],
        ids=[7, 8],
    )
    assert path.stat().st_size < 200  # a small file ...
    message = (
        "bomb.json annotation 1 (id 8): cannot decode RLE counts: they describe 0 pixels, "
        "but its size [100000, 100000] has 10,000,000,000 (the file is corrupt or cut off)"
    )
    with pytest.raises(ValueError, match=exactly(message)):  # ... that allocates nothing
        samkit.load_coco_rle(path)


@pytest.mark.parametrize(
    ("counts", "problem"),
    [
        # the reported case: "0" for a 4x4 mask (uninitialised memory before)
        ("0", "they describe 0 pixels, but its size [4, 4] has 16"),
        # empty counts
        ("", "they describe 0 pixels, but its size [4, 4] has 16"),
        # cut off inside a run: the last character says another one follows
        ("0P", "it ends in the middle of a run (the string is cut off)"),
        # a character outside pycocotools' code (48..111)
        ("0 ", "character ' ' at position 1 is not part of the code"),
        # not ASCII at all
        ("0é", "it holds characters that are not ASCII"),
        # a third run stored as a difference that makes it negative: 1, 2, then 1 - 5
        ("12K", "run 2 is negative"),
        # a first run that is negative ('@' is -16)
        ("@", "run 0 is negative"),
        # too many pixels: 16 zeros and 1 one in a 16-pixel mask
        ("`01", "they describe 17 pixels, but its size [4, 4] has 16"),
        # a run that is longer than any pixel count
        ("o" * 13 + "0", "a run is too long to be a pixel count"),
    ],
)
def test_truncated_or_corrupt_rle_counts_are_refused(counts: str, problem: str) -> None:
    rle = {"size": [4, 4], "counts": counts}
    message = f"RLE 0: cannot decode RLE counts: {problem}"
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        samkit.export.rle_to_masks([rle])


def test_truncated_rle_counts_in_a_file_name_the_annotation(tmp_path: Path) -> None:
    good = samkit.export.masks_to_rle(_random_masks(1, shape=(4, 4)))[0]
    path = _coco_file(tmp_path / "masks.json", [good, {"size": [4, 4], "counts": "0"}])
    message = "masks.json annotation 1 (id 1): cannot decode RLE counts: they describe 0"
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        samkit.load_coco_rle(path)


@pytest.mark.parametrize("seed", range(5))
def test_rle_counts_decode_as_pycocotools_does(seed: int) -> None:
    """The checking decoder reads every string pycocotools writes as pycocotools does."""
    rng = np.random.default_rng(seed)
    height, width = (int(v) for v in rng.integers(1, 300, 2))
    masks = rng.random((4, height, width)) > rng.random((4, 1, 1))
    masks[0] = False  # an empty mask
    masks[1, : height // 2] = True  # long runs
    for rle in samkit.export.masks_to_rle(masks):
        runs = samkit.rle.rle_runs(rle["counts"])
        assert int(runs.sum()) == height * width
        assert coco_mask.area({"size": rle["size"], "counts": rle["counts"].encode()}) == sum(
            runs[1::2]
        )
    np.testing.assert_array_equal(
        samkit.export.rle_to_masks(samkit.export.masks_to_rle(masks)), masks
    )


# ------------------------------------------------------------------ exports: permissions, sets


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (0o022, 0o644),  # the usual umask
        (0o002, 0o664),  # a group-writable setup
        (0o077, 0o600),  # a private one
    ],
)
def test_exported_files_get_the_permissions_the_umask_gives(
    tmp_path: Path, umask: Callable[[int], None], mask: int, expected: int
) -> None:
    umask(mask)
    json_path = samkit.save_coco_rle(_random_masks(2), tmp_path / "masks.json")
    pngs = samkit.save_mask_pngs(_random_masks(2), tmp_path / "png")
    for path in [json_path, *pngs]:
        assert stat.S_IMODE(path.stat().st_mode) == expected, path


def test_overwriting_a_0644_export_keeps_0644(tmp_path: Path, umask: Callable[[int], None]) -> None:
    umask(0o022)
    path = tmp_path / "masks.json"
    path.write_text("{}")
    path.chmod(0o644)
    samkit.save_coco_rle(_random_masks(1), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def _png_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize(
    ("old_count", "new_count"),
    [
        (5, 2),  # a smaller set: no stale masks 002..004 left behind
        (2, 5),  # a larger set
        (3, 0),  # an image with no masks: the earlier set is gone
        (0, 3),  # nothing before
    ],
)
def test_save_mask_pngs_replaces_an_earlier_set_as_a_whole(
    tmp_path: Path, old_count: int, new_count: int
) -> None:
    folder = tmp_path / "png"
    samkit.save_mask_pngs(_detections(old_count), folder, prefix="scene")
    (folder / "notes.txt").write_text("mine")  # not part of a set: never touched
    (folder / "other_000.png").write_bytes(b"another prefix's set")
    new = _detections(new_count)
    paths = samkit.save_mask_pngs(new, folder, prefix="scene")
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        ["notes.txt", "other_000.png", *(f"scene_{i:03d}.png" for i in range(new_count))]
    )
    assert (folder / "notes.txt").read_text() == "mine"
    for path, mask in zip(paths, new.mask, strict=True):
        np.testing.assert_array_equal(samkit.export.load_mask_png(path), mask)


def _disk_fills_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    count = {"n": 0}

    def writer(file: Any, data: bytes) -> None:
        count["n"] += 1
        if count["n"] > writes:
            file.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        file.write(data)

    monkeypatch.setattr(files, "write_bytes", writer)


def test_full_disk_midway_leaves_no_partial_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "png"
    samkit.save_mask_pngs(_detections(4), folder, prefix="scene")
    before = _png_bytes(folder)
    _disk_fills_after(monkeypatch, 2)
    message = f"cannot write {folder}: the disk is full; nothing was changed there"
    with pytest.raises(OSError, match=exactly(message)) as info:
        samkit.save_mask_pngs(_detections(3), folder, prefix="scene")
    assert info.value.errno == errno.ENOSPC
    assert _png_bytes(folder) == before  # the old set, whole; no hidden folder left


def test_full_disk_while_saving_coco_rle_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = samkit.save_coco_rle(_random_masks(3), tmp_path / "masks.json")
    before = path.read_bytes()
    _disk_fills_after(monkeypatch, 0)
    message = f"cannot write {path}: the disk is full; nothing was changed there"
    with pytest.raises(OSError, match=exactly(message)):
        samkit.save_coco_rle(_random_masks(1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["masks.json"]


def test_read_only_export_folder_is_not_called_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(export.tempfile, "mkdtemp", read_only)
    monkeypatch.setattr(export.tempfile, "mkstemp", read_only)
    folder = tmp_path / "png"
    message = f"cannot write {folder}: the file system is read-only; nothing was changed there"
    with pytest.raises(OSError, match=exactly(message)):
        samkit.save_mask_pngs(_detections(1), folder)
    message = message.replace(str(folder), str(tmp_path / "m.json"))
    with pytest.raises(OSError, match=exactly(message)):
        samkit.save_coco_rle(_detections(1), tmp_path / "m.json")


@pytest.mark.parametrize(
    "score",
    [
        float("nan"),  # the reported case
        float("inf"),  # also not JSON
        -float("inf"),
    ],
)
def test_nan_score_is_written_as_json_null(tmp_path: Path, score: float) -> None:
    detections = _detections(2)
    detections.confidence = np.array([0.5, score], np.float32)
    path = samkit.save_coco_rle(detections, tmp_path / "masks.json")

    def refuse(constant: str) -> None:
        raise AssertionError(f"invalid JSON constant {constant}")

    content = json.loads(path.read_text(), parse_constant=refuse)
    assert [a["score"] for a in content["annotations"]] == [0.5, None]
    assert samkit.load_coco_rle(path).confidence is None  # not every mask has a score


# ------------------------------------------------------------------ an image with no masks


@pytest.mark.parametrize(
    "empty",
    [
        [],  # what the automatic mask generator gives for an image with nothing on it
        np.zeros((0, 6, 8), bool),  # an empty stack of a known size
    ],
)
def test_image_with_no_masks_exports_and_reads_back_empty(tmp_path: Path, empty: Any) -> None:
    detections = samkit.amg_to_detections(empty) if isinstance(empty, list) else empty
    json_path = samkit.save_coco_rle(detections, tmp_path / "masks.json", image_name="x.png")
    pngs = samkit.save_mask_pngs(detections, tmp_path / "png")
    content = json.loads(json_path.read_text())
    shape = (None, None) if isinstance(empty, list) else (6, 8)
    assert content == {
        "format": COCO_RLE_FORMAT,
        "image": {"file_name": "x.png", "height": shape[0], "width": shape[1]},
        "annotations": [],
    }
    assert pngs == []
    assert list((tmp_path / "png").iterdir()) == []
    restored = samkit.load_coco_rle(json_path)
    assert len(restored) == 0
    assert restored.mask is not None
    assert restored.mask.shape == (0, *(v or 0 for v in shape))


# ------------------------------------------------------------------ PNG masks of other tools


@pytest.mark.parametrize(
    "mode",
    [
        "L",  # a grayscale label PNG: 0 background, 1 object
        "P",  # a palette label PNG (as many datasets ship them): indices 0 and 1
    ],
)
def test_load_mask_png_reads_a_0_1_label_png(tmp_path: Path, mode: str) -> None:
    mask = _random_masks(1, shape=(9, 7))[0]
    picture = Image.fromarray(mask.astype(np.uint8), mode="L")
    if mode == "P":
        picture = picture.convert("P")
        picture.putpalette([0, 0, 0, 200, 30, 30])
        picture.putdata(mask.astype(np.uint8).ravel().tolist())
    picture.save(tmp_path / "label.png")
    with Image.open(tmp_path / "label.png") as check:
        assert check.mode == mode
    np.testing.assert_array_equal(samkit.export.load_mask_png(tmp_path / "label.png"), mask)


def test_load_mask_png_refuses_a_label_png_with_several_labels(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 2], [3, 3, 0]], np.uint8)
    Image.fromarray(labels, mode="L").save(tmp_path / "labels.png")
    message = (
        f"{tmp_path / 'labels.png'} holds pixel values from 0 to 3, none above 127: it is "
        "neither a black-and-white mask (0 and 255) nor a 0/1 label mask."
    )
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        samkit.export.load_mask_png(tmp_path / "labels.png")


def test_load_mask_png_of_a_decompression_bomb_gives_the_pixel_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    message = f"{tmp_path / 'bomb.png'} is an image of 10,000 pixels, more than the 2,000"
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        samkit.export.load_mask_png(tmp_path / "bomb.png")


def test_failure_while_swapping_sets_puts_the_old_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "png"
    samkit.save_mask_pngs(_detections(3), folder, prefix="scene")
    before = _png_bytes(folder)
    real_replace = os.replace
    calls = {"new": 0}

    def replace(source: Any, target: Any) -> None:
        if Path(source).parent.name.startswith(".scene.new-"):
            calls["new"] += 1
            if calls["new"] == 2:  # the second new mask cannot be moved into place
                raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(export.os, "replace", replace)
    message = f"cannot write {folder}: Input/output error; nothing was changed there"
    with pytest.raises(OSError, match=exactly(message)):
        samkit.save_mask_pngs(_detections(2), folder, prefix="scene")
    assert _png_bytes(folder) == before
