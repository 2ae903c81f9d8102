"""The output folder is the user's: samkit deletes or replaces only the files it wrote."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from samkit.cli import main
from samkit.segment.owned import (
    foreign_files,
    is_temporary,
    own_files,
    record_written,
    remove_own,
    written_digests,
)
from samkit.segment.spec import SegmentUsageError

from .support import FAST, scene


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def done_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two images segmented with --png --preview: the inputs and a pristine copy of out."""
    root = tmp_path_factory.mktemp("owned")
    folder = root / "in"
    folder.mkdir()
    for seed in (1, 2):
        Image.fromarray(scene(seed).image).save(folder / f"{seed}.png")
    out = root / "out"
    assert main(["segment", str(folder), "--out", str(out), "--png", "--preview", *FAST]) == 0
    return folder, out


@pytest.fixture
def run(done_run: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    folder, pristine = done_run
    out = tmp_path / "out"
    shutil.copytree(pristine, out)
    return folder, out


@pytest.mark.slow
def test_samkit_knows_every_file_it_wrote(run: tuple[Path, Path]) -> None:
    _, out = run
    outside_store = [f for f in _files(out) if not f.startswith(".samkit/")]
    assert any(f.startswith("masks/1/mask_") for f in outside_store)
    assert "previews/2.jpg" in outside_store
    assert set(outside_store) <= own_files(out)
    assert foreign_files(out) == []


@pytest.mark.slow
def test_a_users_files_are_refused_with_their_names_and_kept(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, out = run
    (out / "masks" / "hand_made_mask.png").write_bytes(b"mine")
    (out / "previews" / "my_notes.txt").write_text("mine")
    before = _files(out)
    for extra in ([], ["--overwrite"]):
        args = ["segment", str(folder), "--out", str(out), "--png", "--preview", *FAST, *extra]
        assert main(args) == 2
        assert capsys.readouterr().err == (
            f"samkit segment: error: --out {out} holds 2 file(s) samkit did not write: "
            "masks/hand_made_mask.png, previews/my_notes.txt; samkit segment writes into an "
            "empty folder or one it wrote itself, and --overwrite deletes only samkit's own "
            "files: move those files away, or choose another --out\n"
        )
        assert _files(out) == before  # nothing deleted, nothing written


@pytest.mark.slow
def test_an_annotations_file_samkit_did_not_write_is_refused(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, out = run
    (out / "annotations.json").write_text('{"images": [], "mine": true}')
    assert main(["segment", str(folder), "--out", str(out), "--png", "--preview", *FAST]) == 2
    assert re.search(
        r"holds 1 file\(s\) samkit did not write: annotations.json \(annotations.json was not "
        r"written by samkit segment here, so it is not replaced\)",
        capsys.readouterr().err,
    )
    assert json.loads((out / "annotations.json").read_text())["mine"] is True


def test_a_folder_of_someone_elses_files_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(scene(1).image).save(folder / "1.png")
    out = tmp_path / "desktop"
    (out / "work").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "work/f.txt", ".DS_Store"):
        (out / name).write_text("mine")
    message = (
        f"--out {out} holds 6 file(s) samkit did not write: a.txt, b.txt, c.txt, d.txt, "
        "e.txt and 1 more;"
    )
    from samkit.segment.job import segment_images

    with pytest.raises(SegmentUsageError, match=re.escape(message)):
        segment_images([folder], out, model_type="shapes", device="cpu", progress=False)
    assert not (out / ".samkit").exists()


@pytest.mark.slow
def test_overwrite_removes_only_samkits_own_files(
    run: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, out = run
    args = ["segment", str(folder), "--out", str(out), *FAST, "--overwrite"]
    assert main(args) == 0  # without --png --preview now: their files go, and their folders
    assert "done 2, skipped 0, failed 0" in capsys.readouterr().out
    assert not (out / "masks").exists() and not (out / "previews").exists()
    assert sorted(p.name for p in out.iterdir()) == [".samkit", "annotations.json"]


@pytest.mark.slow
def test_remove_own_keeps_a_file_added_after_the_check(run: tuple[Path, Path]) -> None:
    _, out = run
    (out / "masks" / "1" / "later.png").write_bytes(b"mine")
    remove_own(out)
    assert _files(out) == ["masks/1/later.png"]


@pytest.mark.slow
def test_a_killed_run_still_owns_what_it_was_writing(run: tuple[Path, Path]) -> None:
    _, out = run
    journal = out / ".samkit" / "writing"
    journal.mkdir(exist_ok=True)
    (journal / "k.json").write_text(json.dumps({"files": ["masks/9/", "masks/9/mask_000.png"]}))
    (out / "masks" / "9").mkdir()
    (out / "masks" / "9" / "mask_000.png").write_bytes(b"half a run")
    (out / "masks" / "9" / ".mask.new-x1y2").mkdir()  # a PNG set being swapped in
    (out / "masks" / "9" / ".mask.new-x1y2" / "mask_000.png").write_bytes(b"")
    (out / ".annotations.json.abc.tmp").write_text("half")
    assert foreign_files(out) == []
    remove_own(out)
    assert _files(out) == []


@pytest.mark.parametrize(
    ("relative", "temporary"),
    [
        (".annotations.json.k2j3.tmp", True),
        ("masks/a/.mask.old-k2j3", True),
        ("previews/.a.jpg.k2j3.tmp", True),
        (".data.yaml.k2j3.tmp", True),
        ("labels/cam/.a.txt.k2j3.tmp", True),
        ("cutouts/a/.cutout_000.png.k2j3.tmp", True),
        (".notes.tmp", False),  # a hidden .tmp file of the user's, at the top
        ("photos/.a.jpg.k2j3.tmp", False),  # outside samkit's folders
        ("masks/a/mask_000.png", False),
    ],
)
def test_is_temporary(relative: str, temporary: bool) -> None:
    assert is_temporary(relative) is temporary


def test_a_folder_called_samkit_that_is_not_a_store_is_foreign(tmp_path: Path) -> None:
    (tmp_path / ".samkit").mkdir()
    (tmp_path / ".samkit" / "settings.json").write_text('{"format": "mine"}')
    assert foreign_files(tmp_path) == [".samkit/settings.json"]
    assert own_files(tmp_path) == set()


def test_written_digests_by_file_and_from_an_earlier_store(tmp_path: Path) -> None:
    (tmp_path / ".samkit").mkdir()
    written = tmp_path / ".samkit" / "written.json"
    written.write_text('{"annotations_sha256": ["old"]}')  # before data.yaml was recorded
    assert written_digests(tmp_path) == ["old"]
    assert written_digests(tmp_path, "data.yaml") == []
    record_written(tmp_path, "data.yaml", "names: []\n")
    record_written(tmp_path, "annotations.json", "{}")
    record_written(tmp_path, "annotations.json", "[]")
    digests = json.loads(written.read_text())["sha256"]
    assert len(digests["data.yaml"]) == 1
    assert len(digests["annotations.json"]) == 2  # the last two: on disk, being written
    assert "old" not in digests["annotations.json"]
