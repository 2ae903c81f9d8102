"""Shared fixtures: a small random SAM and its real outputs on a synthetic image.

The converters are tested on what the stock ``SamAutomaticMaskGenerator`` and
``SamPredictor`` really return (keys, dtypes, shapes), not on hand-written imitations.
The model is the ``shapes`` architecture with random weights (seeded), so no checkpoint
and no network are needed; the masks mean nothing, their format is the real one.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import matplotlib

if os.environ.get("PYTEST_XDIST_WORKER"):
    # make test runs three workers on two cores: one thread each (torch, and OpenVINO,
    # which follows torch; the notebooks' kernels and other subprocesses inherit it), so
    # that the workers do not run more threads than cores that wait on each other.
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.modeling import Sam

import samkit
from samkit.files import atomic_writer
from samkit.locks import locked

ROOT = Path(__file__).resolve().parent.parent

matplotlib.use("Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

#: The box prompt given to ``SamPredictor.predict`` (xyxy, around the red rectangle).
BOX = np.array([20, 10, 70, 50], dtype=np.float32)
#: The two box prompts given to ``SamPredictor.predict_torch``.
BATCH_BOXES = np.array([[20, 10, 70, 50], [80, 60, 120, 90]], dtype=np.float32)


@pytest.fixture(scope="session")
def shapes_image() -> np.ndarray:
    """A 96x128 RGB uint8 scene: two rectangles and a disc on grey."""
    image = np.full((96, 128, 3), 90, dtype=np.uint8)
    image[10:50, 20:70] = (220, 30, 30)
    image[60:90, 80:120] = (30, 200, 60)
    yy, xx = np.mgrid[:96, :128]
    image[(yy - 72) ** 2 + (xx - 35) ** 2 < 15**2] = (40, 60, 220)
    image.flags.writeable = False
    return image


@pytest.fixture(scope="session")
def shapes_sam() -> Sam:
    """The ``shapes`` architecture with random weights from a fixed seed."""
    torch.manual_seed(0)
    return samkit.model.build_shapes_sam()


@pytest.fixture(scope="session")
def _amg_results(shapes_sam: Sam, shapes_image: np.ndarray) -> list[dict[str, Any]]:
    generator = SamAutomaticMaskGenerator(
        shapes_sam,
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        # Keep every mask: random weights give many near-duplicates, which is what the
        # sorting and de-duplication tests want to see.
        box_nms_thresh=1.0,
    )
    return generator.generate(np.array(shapes_image))


@pytest.fixture
def amg_results(_amg_results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A fresh copy of ``SamAutomaticMaskGenerator.generate`` output (tests may mutate it)."""
    return copy.deepcopy(_amg_results)


@pytest.fixture(scope="session")
def predictor(shapes_sam: Sam, shapes_image: np.ndarray) -> SamPredictor:
    """A ``SamPredictor`` with the synthetic image already set."""
    sam_predictor = SamPredictor(shapes_sam)
    sam_predictor.set_image(np.array(shapes_image))
    return sam_predictor


@pytest.fixture(scope="session")
def prediction(predictor: SamPredictor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``predict(box=BOX, multimask_output=True)``: masks (3, H, W), scores, logits."""
    return predictor.predict(box=BOX, multimask_output=True)


@pytest.fixture(scope="session")
def batch_prediction(
    predictor: SamPredictor, shapes_image: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``predict_torch`` with two boxes: masks (2, 3, H, W), scores (2, 3), logits."""
    boxes = predictor.transform.apply_boxes_torch(
        torch.as_tensor(BATCH_BOXES), shapes_image.shape[:2]
    )
    return predictor.predict_torch(None, None, boxes=boxes, multimask_output=True)


@pytest.fixture
def amg_detections(amg_results: list[dict[str, Any]]) -> Any:
    """``amg_to_detections`` of the real generator output."""
    return samkit.amg_to_detections(amg_results)


@pytest.fixture(scope="session")
def random_vit_b_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full-size vit_b with random weights (seeded), saved once as a checkpoint file.

    Shared by the session, and by every worker of a ``pytest -n`` run (one folder for
    all, made by the first), so that its converted fast encoder (cached next to it) is
    made once: a second worker waits for the first's conversion (``samkit.locks``).
    """
    import torch
    from segment_anything import sam_model_registry

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder = root / "random_vit_b"
    folder.mkdir(exist_ok=True)
    path = folder / "vit_b_random.pth"
    with locked(folder / "make.lock"):
        if not path.exists():
            torch.manual_seed(0)
            sam = sam_model_registry["vit_b"]()
            with atomic_writer(path) as file:
                torch.save(sam.state_dict(), file)
    return path


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture made once per module (or class, or package)."""
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else ()
    return any(d.scope in ("module", "class", "package") for defs in definitions for d in defs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order and group the tests for ``make test``'s workers (``pytest -n 3``).

    The tests of a file with module fixtures stay on one worker, so those fixtures are
    made once (``--dist loadgroup``); every other test goes to whichever worker is free.
    The longest work starts first and the quick tests come last to fill the gaps
    (``--no-loadscope-reorder`` keeps this order): :data:`FIRST`, the other notebooks on
    the photo path, the other notebook runs, the other slow tests free to go anywhere
    (training runs, the browser), then the files kept together, then the rest.
    """
    grouped = {item.path for item in items if _shares_a_module_fixture(item)}
    for item in items:
        if item.path in grouped:
            item.add_marker(pytest.mark.xdist_group(item.path.relative_to(ROOT).as_posix()))

    def when(item: pytest.Item) -> int:
        first = [i for i, start in enumerate(FIRST) if item.name.startswith(start)]
        if first:
            return first[0] - len(FIRST)
        if item.path in grouped:
            return 3
        if "slow" not in item.keywords:
            return 4
        if item.path.name != "test_notebooks.py":
            return 2
        return 0 if "photo_path" in item.name else 1

    items.sort(key=when)


#: The tests handed out first, in this order (one to each worker, in turns): notebook 8
#: on the photo path converts the shared vit_b encoder at its first cell while the other
#: workers fine-tune the bundled model and run the Ray engine (no vit_b at all), so that
#: no worker waits for the conversion; then the longest notebooks on the photo path.
FIRST = (
    "test_notebook_runs_on_the_photo_path[08_",
    "test_fine_tuning_teaches_the_bundled_model_rings_and_keeps_its_shapes",
    "test_ray_engine_gives_the_local_engine_annotations",
    "test_notebook_runs_on_the_photo_path[03_",
    "test_notebook_runs_on_the_photo_path[02_",
    "test_notebook_runs_on_the_photo_path[06_",
)


@pytest.fixture(scope="session")
def ring_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small fine-tuning data set: 6 generated ring scenes of 192x256 as COCO (RLE)."""
    from samkit.finetune.coco import ring_dataset

    return ring_dataset(tmp_path_factory.mktemp("rings"), count=6, seed=500, height=192, width=256)
