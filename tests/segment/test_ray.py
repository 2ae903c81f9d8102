"""The Ray engine: the same job on a local Ray with 2 CPUs gives the local engine's result."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samkit.export import rle_to_masks
from samkit.segment.job import segment_images
from samkit.segment.owned import foreign_files
from samkit.segment.ray import host_and_port, import_ray, plan_actors, start_ray
from samkit.segment.spec import SegmentUsageError
from samkit.shapes import make_scene

SETTINGS: dict[str, Any] = {"model_type": "shapes", "points_per_side": 4, "progress": False}


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(SegmentUsageError, match=r"install it with pip install 'samkit\[ray\]'"):
        import_ray()


@pytest.mark.slow
@pytest.mark.parametrize("actors", [0, -1, 1.5, True])
def test_bad_actor_count_is_refused(actors: Any, tmp_path: Path) -> None:
    with pytest.raises(SegmentUsageError, match="ray_actors must be a positive int"):
        segment_images([tmp_path], tmp_path.parent / "o", engine="ray", ray_actors=actors)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_ray_address_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from samkit.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(make_scene(1, height=32, width=40).image).save(folder / "a.png")
    port = _free_port()  # closed again: nothing listens there
    out = tmp_path / "out"
    args = ["segment", str(folder), "--out", str(out), "--engine", "ray", "--no-progress"]
    assert main([*args, "--model", "shapes", "--ray-address", f"127.0.0.1:{port}"]) == 2
    assert capsys.readouterr().err == (
        f"samkit segment: error: cannot reach the Ray cluster at 127.0.0.1:{port} (127.0.0.1 "
        f"port {port}: Connection refused, within 60 s): check --ray-address (the head node's "
        "address, such as ray://head:10001) and that the cluster is running; nothing was "
        "written to --out\n"
    )
    assert not out.exists()


class _Silent:
    """A Ray that never finishes joining (as ray.init does at an address that never answers)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs: Any) -> None:
        self.release.wait(30)


def test_joining_a_cluster_has_a_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listening:  # something answers at the address, but not Ray
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"ray://127.0.0.1:{listening.getsockname()[1]}"
        silent = _Silent()
        start = time.monotonic()
        message = (
            f"could not join the Ray cluster at {address} within 0.5 s (something answers "
            "there, but no Ray cluster joined): check --ray-address and that the cluster is "
            "running; nothing was written to --out"
        )
        with pytest.raises(SegmentUsageError, match=re.escape(message)):
            start_ray(silent, address, 0.5)
        silent.release.set()
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("ray://head:10001", ("head", 10001)),
        ("10.0.0.2:6379", ("10.0.0.2", 6379)),
        ("ray://[::1]:10001", ("::1", 10001)),
        ("auto", None),  # found by Ray itself
        ("head", None),
    ],
)
def test_host_and_port(address: str, parsed: tuple[str, int] | None) -> None:
    assert host_and_port(address) == parsed


class _Cluster:
    def __init__(self, resources: dict[str, float]) -> None:
        self.resources = resources

    def cluster_resources(self) -> dict[str, float]:
        return self.resources


@pytest.mark.parametrize(
    ("resources", "actors", "expected"),
    [
        ({}, None, (1, 0.0, 1.0)),  # empty: no resources reported, one actor on one CPU
        ({"CPU": 2}, None, (1, 0.0, 2.0)),  # CPU only: one actor per two CPUs
        ({"CPU": 16}, None, (8, 0.0, 2.0)),
        ({"CPU": 2}, 2, (2, 0.0, 1.0)),  # two actors share two CPUs
        ({"CPU": 2}, 5, (2, 0.0, 1.0)),  # at most one actor per CPU
        ({"CPU": 32, "GPU": 4}, None, (4, 1.0, 1.0)),  # one actor per GPU
        ({"CPU": 32, "GPU": 4}, 2, (2, 1.0, 1.0)),
        ({"CPU": 32, "GPU": 4}, 9, (4, 1.0, 1.0)),  # at most one actor per GPU
    ],
)
def test_plan_actors(
    resources: dict[str, float], actors: int | None, expected: tuple[int, float, float]
) -> None:
    assert plan_actors(_Cluster(resources), actors) == expected


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _masks(annotations: list[dict[str, Any]]) -> list[np.ndarray]:
    return [rle_to_masks([a["segmentation"]])[0] for a in annotations]


@pytest.mark.slow
def test_ray_engine_gives_the_local_engine_annotations(local_ray: Any, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "cam1").mkdir(parents=True)
    for seed in range(4):
        scene = make_scene(seed, height=64, width=80, n_shapes=2, min_size=0.3)
        Image.fromarray(scene.image).save(folder / ("cam1" if seed % 2 else ".") / f"{seed}.png")
    (folder / "broken.png").write_bytes(b"not a PNG")
    formats = "coco,yolo,png"
    local = segment_images([folder], tmp_path / "local", formats=formats, **SETTINGS)
    on_ray = segment_images(
        [folder], tmp_path / "ray", engine="ray", ray_actors=2, formats=formats, **SETTINGS
    )
    assert (local.done, on_ray.done) == (4, 4)
    assert [f.reason for f in on_ray.failed] == [f.reason for f in local.failed]
    assert len(on_ray.failed) == 1 and on_ray.failed[0].path.endswith("broken.png")
    a = json.loads((tmp_path / "local" / "annotations.json").read_text())
    b = json.loads((tmp_path / "ray" / "annotations.json").read_text())
    assert a["images"] == b["images"]
    assert a["categories"] == b["categories"]
    assert len(a["annotations"]) == len(b["annotations"]) > 0
    # The actors run torch on one thread each, the local engine on two: sums add up in
    # another order, so scores may differ in the last float32 digits (and a mask, in
    # principle, by a pixel at its edge).
    for x, y, mx, my in zip(
        a["annotations"], b["annotations"], _masks(a["annotations"]), _masks(b["annotations"]),
        strict=True,
    ):  # fmt: skip
        assert (x["id"], x["image_id"], x["category_id"]) == (
            y["id"],
            y["image_id"],
            y["category_id"],
        )
        assert (mx & my).sum() / (mx | my).sum() > 0.99
        assert x["predicted_iou"] == pytest.approx(y["predicted_iou"], abs=1e-4)
        assert x["stability_score"] == pytest.approx(y["stability_score"], abs=1e-3)
    # the same files in every format (labels/, data.yaml, cutouts/), all samkit's own
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
    assert {"data.yaml", "labels/cam1/1.txt", "cutouts/2/cutout_000.png"} <= _outputs(
        tmp_path / "ray"
    )
    assert foreign_files(tmp_path / "ray") == []
    # the results are the same files: a local run resumes what Ray did
    again = segment_images([folder], tmp_path / "ray", formats=formats, **SETTINGS)
    assert (again.done, again.skipped) == (0, 4)


def _outputs(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if ".samkit" not in p.parts}
