"""The Ray engine: the same job on a local Ray with 2 CPUs gives the local engine's result."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samkit.export import rle_to_masks
from samkit.segment.job import segment_images
from samkit.segment.ray import import_ray, plan_actors
from samkit.segment.spec import SegmentUsageError
from samkit.shapes import make_scene

SETTINGS: dict[str, Any] = {"model_type": "shapes", "points_per_side": 4, "progress": False}


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(SegmentUsageError, match=r"install it with pip install 'samkit\[ray\]'"):
        import_ray()


@pytest.mark.parametrize("actors", [0, -1, 1.5, True])
def test_bad_actor_count_is_refused(actors: Any, tmp_path: Path) -> None:
    with pytest.raises(SegmentUsageError, match="ray_actors must be a positive int"):
        segment_images([tmp_path], tmp_path.parent / "o", engine="ray", ray_actors=actors)


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
    local = segment_images([folder], tmp_path / "local", **SETTINGS)
    on_ray = segment_images([folder], tmp_path / "ray", engine="ray", ray_actors=2, **SETTINGS)
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
    # the results are the same files: a local run resumes what Ray did
    again = segment_images([folder], tmp_path / "ray", **SETTINGS)
    assert (again.done, again.skipped) == (0, 4)
