"""The tutorial notebooks: committed clean, Colab-ready, and run by nbval offline.

Two kinds of check:

- Static, on the committed files: no outputs or execution counts, no ``def``/loop/
  ``lambda``, an Open-in-Colab badge whose URL is built from ``[project.urls]
  Repository`` in pyproject.toml, a first code cell that installs the repo only under
  Colab without reinstalling torch, then ``import samkit`` and ``samkit.enable_widgets()``.
  The checker is itself tested on broken notebooks, so it can fail.

- Executed, with nbval (``--nbval-lax``) under ``SAMKIT_MODEL=shapes`` on the CPU: every
  cell must run, and every cell tagged ``nbval-check-output`` must print exactly what
  ``tests/notebook_outputs.json`` holds. Outputs are never committed, so the test puts
  those reference outputs into a temporary copy of the notebook and runs nbval on the
  copy. The reference is written by ``make nbval-outputs`` and is checked here for
  sense (the box is the sample's default box, the IoUs with the ground truth are high,
  the areas are in order), so refreshing it cannot bless a broken result.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomllib
from english_words import english_words
from IPython.core.inputtransformer2 import TransformerManager

import samkit
from samkit.fast import cache
from tools import run_notebooks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = ROOT / "tests" / "notebook_outputs.json"


#: The notebooks of the tutorial, in order.
NOTEBOOK_NAMES = [
    "01_configuracion.ipynb",
    "02_como_funciona_sam.ipynb",
    "03_mascaras_automaticas.ipynb",
    "04_caja_con_el_mouse.ipynb",
    "05_puntos_cajas_y_detector.ipynb",
    "06_proba_con_tu_imagen.ipynb",
    "07_sam2_y_sam3.ipynb",
    "08_ajusta_sam_a_tus_objetos.ipynb",
]

#: Notebooks whose checked cells are still marked by a ``# NBVAL_CHECK_OUTPUT`` comment in
#: the code, which a learner reads, instead of the ``nbval-check-output`` tag. Empty this
#: set once they carry the tag (a test fails as soon as one of them has no comment left).
COMMENT_MARKED: set[str] = set()

#: Runtime dependencies that Colab already has: the Colab cell must not install them.
COLAB_PREINSTALLED = {
    "torch",
    "torchvision",
    "opencv-python",
    "matplotlib",
    "numpy",
    "pillow",
    "tqdm",
    "transformers",  # notebook 7 says to upgrade it only if it is older than 5
}

#: Per-cell metadata that Colab adds and that must not be committed.
COLAB_CELL_KEYS = ("id", "colab", "outputId", "executionInfo")

#: The lowest IoU with the ground truth a checked prompt result may have.
MIN_IOU = 0.85

_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
REPOSITORY: str = _PYPROJECT["project"]["urls"]["Repository"]
_DEPENDENCIES: list[str] = _PYPROJECT["project"]["dependencies"]


def badge_url(file_name: str) -> str:
    """The Open-in-Colab URL of a notebook, from the repository URL in pyproject.toml."""
    owner_repo = REPOSITORY.removeprefix("https://github.com/").removesuffix(".git").strip("/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{file_name}"


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _python(source: str) -> ast.Module | None:
    """A code cell as Python (IPython's ``!`` and ``%`` lines turned into calls)."""
    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().lower()


_FORBIDDEN = {
    ast.FunctionDef: "a def",
    ast.AsyncFunctionDef: "a def",
    ast.ClassDef: "a class",
    ast.Lambda: "a lambda",
    ast.For: "a for loop",
    ast.AsyncFor: "a for loop",
    ast.While: "a while loop",
}


def notebook_problems(notebook: dict[str, Any], file_name: str) -> list[str]:
    """Everything wrong with a committed notebook (an empty list when it is clean)."""
    problems: list[str] = []
    cells = notebook.get("cells", [])
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "code":
            if cell.get("outputs"):
                problems.append(f"cell {index} has outputs: strip them (make strip)")
            if cell.get("execution_count") is not None:
                problems.append(f"cell {index} has an execution count: strip it (make strip)")
        colab_keys = [key for key in COLAB_CELL_KEYS if key in cell.get("metadata", {})]
        if colab_keys:
            problems.append(f"cell {index} has Colab metadata {colab_keys}: strip it")
    if notebook.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        problems.append("the kernel must be python3")

    expected_url = badge_url(file_name)
    first_text = _source(cells[0]) if cells and cells[0].get("cell_type") == "markdown" else ""
    if "colab-badge.svg" not in first_text or f"({expected_url})" not in first_text:
        problems.append(
            f"the first cell must be a markdown Open-in-Colab badge linking {expected_url}"
        )
    for index, cell in enumerate(cells):
        for url in re.findall(
            r"https://colab\.research\.google\.com/github/[^\s)\"']+", _source(cell)
        ):
            if url != expected_url:
                problems.append(
                    f"cell {index} links {url}, but pyproject.toml gives {expected_url}"
                )

    code = [
        (index, _source(cell))
        for index, cell in enumerate(cells)
        if cell.get("cell_type") == "code"
    ]
    if len(code) < 2:
        return [*problems, "a notebook needs the Colab cell and the import cell"]
    colab_index, colab = code[0]
    if '"google.colab" in sys.modules' not in colab:
        problems.append(
            'the first code cell must install only under Colab (if "google.colab" in sys.modules)'
        )
    if f"git clone --depth 1 {REPOSITORY}.git" not in colab:
        problems.append(f"the first code cell must clone {REPOSITORY}.git")
    if "pip install --quiet --no-deps -e ." not in colab:
        problems.append("the first code cell must install samkit with pip install --no-deps -e .")
    installed = {
        _requirement_name(word.strip('"'))
        for line in colab.splitlines()
        if "pip install" in line
        for word in line.split("pip install", 1)[1].split()
        if not word.startswith("-") and word != "."
    }
    for name in sorted(installed & COLAB_PREINSTALLED):
        problems.append(f"the Colab cell must not reinstall {name}: Colab already has it")
    needed = {_requirement_name(d) for d in _DEPENDENCIES} - COLAB_PREINSTALLED
    for name in sorted(needed - installed):
        problems.append(f"the Colab cell must install {name} (a dependency in pyproject.toml)")
    _, imports = code[1]
    if "import samkit" not in imports or "samkit.enable_widgets()" not in imports:
        problems.append("the second code cell must import samkit and call samkit.enable_widgets()")

    for index, source in code:
        if index != colab_index and "google.colab" in source:
            problems.append(f"cell {index} mentions google.colab: only the first code cell may")
        if "os.environ" in source or "SAMKIT_MODEL" in source:
            problems.append(f"cell {index} sets a flag: samkit decides the model (SAMKIT_MODEL)")
        tree = _python(source)
        if tree is None:
            problems.append(f"cell {index} is not valid Python")
            continue
        found = {
            what
            for node in ast.walk(tree)
            for kind, what in _FORBIDDEN.items()
            if isinstance(node, kind)
        }
        for what in sorted(found):
            problems.append(f"cell {index} has {what}: put that logic in samkit")
    return problems


def _load(name: str) -> dict[str, Any]:
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


def _expected() -> dict[str, list[str]]:
    return json.loads(EXPECTED.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ the committed files


def test_the_notebooks_are_the_tutorial() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NOTEBOOK_NAMES
    assert [p.name for p in run_notebooks.notebook_paths()] == NOTEBOOK_NAMES


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_is_clean_and_colab_ready(name: str) -> None:
    assert notebook_problems(_load(name), name) == []


def _code_cell(notebook: dict[str, Any], nth: int) -> dict[str, Any]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"][nth]


def _set_source(cell: dict[str, Any], text: str) -> None:
    cell["source"] = text


def _mutate(change: str, notebook: dict[str, Any]) -> None:
    """Break a clean notebook in one way."""
    cells = notebook["cells"]
    last = _code_cell(notebook, -1)
    if change == "outputs":
        last["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
    elif change == "execution count":
        last["execution_count"] = 3
    elif change == "def":
        _set_source(last, "def helper():\n    return 1")
    elif change == "loop":
        _set_source(last, "for i in range(3):\n    print(i)")
    elif change == "lambda":
        _set_source(last, "key = lambda r: r['area']")
    elif change == "no colab cell":
        cells.remove(_code_cell(notebook, 0))
    elif change == "torch reinstall":
        cell = _code_cell(notebook, 0)
        _set_source(cell, _source(cell) + '\n    !pip install "torch>=2.1"')
    elif change == "wrong badge":
        cells[0]["source"] = _source(cells[0]).replace("/samkit/blob/", "/other/blob/")
    elif change == "no badge":
        cells[0]["source"] = "# Title"
    elif change == "colab elsewhere":
        _set_source(last, 'import sys\n"google.colab" in sys.modules')
    elif change == "no enable_widgets":
        _set_source(_code_cell(notebook, 1), "import samkit")
    elif change == "model flag":
        _set_source(last, 'import os\nos.environ["SAMKIT_MODEL"] = "shapes"')
    elif change == "colab metadata":
        last["metadata"] = {"id": "abc123", "outputId": "x"}
    elif change == "missing dependency":
        cell = _code_cell(notebook, 0)
        _set_source(cell, _source(cell).replace(' "pycocotools>=2.0.7"', ""))
    else:  # pragma: no cover - a typo in the table below
        raise AssertionError(change)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        # a committed output
        ("outputs", "has outputs"),
        # a committed execution count
        ("execution count", "has an execution count"),
        # logic that belongs in samkit
        ("def", "has a def"),
        ("loop", "has a for loop"),
        ("lambda", "has a lambda"),
        # no Colab install cell first
        ("no colab cell", "must install only under Colab"),
        # torch reinstalled in Colab
        ("torch reinstall", "must not reinstall torch"),
        # a badge that disagrees with pyproject.toml
        ("wrong badge", "but pyproject.toml gives"),
        ("no badge", "Open-in-Colab badge"),
        # Colab knowledge outside the first cell
        ("colab elsewhere", "only the first code cell may"),
        # widgets not enabled
        ("no enable_widgets", "samkit.enable_widgets()"),
        # a model flag edited in the notebook
        ("model flag", "samkit decides the model"),
        # Colab's per-cell metadata
        ("colab metadata", "has Colab metadata ['id', 'outputId']"),
        # a runtime dependency the Colab cell forgot
        ("missing dependency", "must install pycocotools"),
    ],
)
def test_checker_finds_each_problem(change: str, problem: str) -> None:
    notebook = copy.deepcopy(_load(NOTEBOOK_NAMES[0]))
    _mutate(change, notebook)
    problems = notebook_problems(notebook, NOTEBOOK_NAMES[0])
    assert any(problem in p for p in problems), problems


def test_checker_on_an_empty_notebook() -> None:
    # nothing at all: no badge, no Colab cell
    problems = notebook_problems({"cells": [], "metadata": {}}, "x.ipynb")
    assert "the kernel must be python3" in problems
    assert problems[-1] == "a notebook needs the Colab cell and the import cell"


def test_badge_url_comes_from_pyproject() -> None:
    assert REPOSITORY.startswith("https://github.com/")
    owner_repo = REPOSITORY.removeprefix("https://github.com/")
    assert badge_url("04_caja_con_el_mouse.ipynb") == (
        f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/"
        "04_caja_con_el_mouse.ipynb"
    )


# ------------------------------------------------------------------ the reference outputs


def test_reference_has_one_output_per_checked_cell() -> None:
    expected = _expected()
    assert sorted(expected) == NOTEBOOK_NAMES
    for name in NOTEBOOK_NAMES:
        notebook = run_notebooks.nbformat.read(NOTEBOOKS / name, as_version=4)
        marked = run_notebooks.checked_cells(notebook)
        assert marked, f"{name} has no cell tagged nbval-check-output"
        assert len(expected[name]) == len(marked), name
        assert all(text.strip() for text in expected[name]), name


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_checked_cells_are_tagged_not_commented(name: str) -> None:
    notebook = run_notebooks.nbformat.read(NOTEBOOKS / name, as_version=4)
    commented = [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and run_notebooks.CHECK_MARK in cell.source
    ]
    if name in COMMENT_MARKED:
        assert commented, f"{name} carries the tag now: take it out of COMMENT_MARKED"
    else:
        assert commented == [], f"{name}: move the comment into the nbval-check-output tag"
        assert [i for i, c in enumerate(notebook.cells) if run_notebooks.is_tagged(c)] == (
            run_notebooks.checked_cells(notebook)
        )


def test_checked_cells_reads_the_tag_and_the_comment() -> None:
    new = run_notebooks.nbformat.v4
    notebook = new.new_notebook()
    notebook.cells = [
        new.new_code_cell("print(1)", metadata={"tags": ["nbval-check-output"]}),  # tagged
        new.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(2)"),  # nbval's comment
        new.new_code_cell("print(3)", metadata={"tags": ["other"]}),  # another tag
        new.new_markdown_cell("NBVAL_CHECK_OUTPUT"),  # text, not code
    ]
    assert run_notebooks.checked_cells(notebook) == [0, 1]
    notebook.cells = []  # empty
    assert run_notebooks.checked_cells(notebook) == []


def _ious(text: str) -> list[tuple[float, int]]:
    return [
        (float(iou), int(obj))
        for iou, obj in re.findall(r"IoU con la máscara exacta: ([0-9.]+) \(objeto (\d+)", text)
    ]


def test_reference_makes_sense() -> None:
    expected = _expected()
    # 01: the bundled model, its checkpoint on disk
    model, checkpoint = expected["01_configuracion.ipynb"]
    assert model == "modelo: shapes\n"
    assert checkpoint.startswith("sam_shapes.pt está en el disco: sí\n")

    # 02: one embedding per image; one point gives three masks, one of them a shape
    embedding, masks, report = expected["02_como_funciona_sam.ipynb"]
    config = samkit.model.SHAPES_CONFIG
    side = config.image_size // config.patch_size
    channels = config.prompt_embed_dim
    assert f"embedding (lote, canales, alto, ancho): (1, {channels}, {side}, {side})" in embedding
    assert "máscaras (cantidad, alto, ancho): (3, 480, 640)" in masks
    assert len(report.splitlines()) == 3
    assert max(iou for iou, _ in _ious(report)) >= MIN_IOU

    # 03: the masks found, their areas smallest first, duplicates removed, export read back
    found, areas, dedup, clean, restored = expected["03_mascaras_automaticas.ipynb"]
    count = int(re.search(r"máscaras: (\d+)", found).group(1))  # type: ignore[union-attr]
    scene = samkit.sample_image("chelsea", model_type="shapes")
    assert scene.ground_truth is not None
    assert count >= len(scene.ground_truth)
    assert "segmentation: (480, 640) bool" in found
    values = json.loads(areas.splitlines()[-1])
    assert len(values) == count and values == sorted(values) and values[0] > 0
    kept = [int(n) for n in re.findall(r": (\d+)\n", dedup)]
    assert kept[0] == count and all(0 < n <= count for n in kept[1:])
    cleaned, final = (int(n) for n in re.findall(r": (\d+)\n", clean))
    assert len(scene.ground_truth) <= final <= cleaned <= count
    assert restored == f"máscaras leídas: {final}\nidénticas a las guardadas: {final} de {final}\n"

    # 04: the default box, and the best mask is the boxed shape
    box, report, live = expected["04_caja_con_el_mouse.ipynb"]
    sample = samkit.sample_image("coffee", model_type="shapes")
    default = sample.default_box
    x, y, w, h = (int(default[k]) for k in ("x", "y", "width", "height"))
    assert box == f"caja xyxy: {[x, y, x + w, y + h]}\n"
    [(iou, obj)] = _ious(report)
    assert iou >= MIN_IOU and obj == sample.target
    # the live widget with the same default box gives the same mask
    assert live == box + report

    # 05: clicks on the target shape, then one box per shape from the detector file
    click, refined, two_clicks, box_exclude, live_clicks, live_box, boxes, segmented = expected[
        "05_puntos_cajas_y_detector.ipynb"
    ]
    sample = samkit.sample_image("astronaut", model_type="shapes")
    # two include clicks on the target: its mask; a box and an exclude click: still it
    for report in (two_clicks, box_exclude):
        [(iou, obj)] = _ious(report)
        assert iou >= MIN_IOU and obj == sample.target
    # the same clicks in the live widget, then its box plus an include click
    for live in (live_clicks, live_box):
        [(live_iou, live_obj)] = _ious(live)
        assert live_iou >= MIN_IOU and live_obj == sample.target
    clicked = [[float(v) for v in p] for p in (sample.default_point, sample.exclude_point)]
    assert live_clicks.startswith(f"puntos: {clicked} etiquetas: [1, 0]\n")
    [(refined_iou, refined_obj)] = _ious(refined)
    assert refined_iou >= MIN_IOU and refined_obj == sample.target
    assert _ious(click)[0][1] == sample.target
    assert boxes.startswith(f"{len(sample.labels)} cajas: {list(sample.labels)}")
    matches = _ious(segmented)
    assert [obj for _, obj in matches] == list(range(len(sample.labels)))
    assert min(iou for iou, _ in matches) >= MIN_IOU

    # 06: no image given outside Colab: the sample, and a box in its centre half
    [box] = expected["06_proba_con_tu_imagen.ipynb"]
    height, width = samkit.sample_image("coffee", model_type="shapes").image.shape[:2]
    centre = [width // 4, height // 4, 3 * width // 4, 3 * height // 4]
    assert box == f"caja xyxy: {centre}\n"

    # 07: SAM 2.1 answers in SamPredictor's formats, next to SAM's
    [formats] = expected["07_sam2_y_sam3.ipynb"]
    sam_line, sam2_line = formats.splitlines()
    assert sam_line.startswith("SAM:     máscaras (3, 480, 640) bool | puntajes (3,) float32")
    assert sam2_line == (
        "SAM 2.1: máscaras (3, 480, 640) bool | puntajes (3,) float32 | logits (3, 256, 256)"
    )

    # 08: 6 generated ring scenes and the labeled image with its one mask
    [dataset] = expected["08_ajusta_sam_a_tus_objetos.ipynb"]
    objects = sum(len(samkit.rings.make_ring_scene(i)) for i in range(6)) + 1
    assert dataset == f"imágenes: 7 - objetos: {objects}\n"


# ------------------------------------------------------------------ running them


def _with_reference_outputs(name: str, folder: Path) -> Path:
    """A copy of the notebook whose checked cells hold the reference outputs."""
    notebook = run_notebooks.nbformat.read(NOTEBOOKS / name, as_version=4)
    texts = _expected()[name]
    marked = run_notebooks.checked_cells(notebook)
    assert len(texts) == len(marked), f"{name}: refresh the reference with make nbval-outputs"
    for index, text in zip(marked, texts, strict=True):
        cell = notebook.cells[index]
        cell.outputs = [run_notebooks.nbformat.v4.new_output("stream", name="stdout", text=text)]
        # nbval only compares cells that look executed
        cell.execution_count = index + 1
    path = folder / name
    run_notebooks.nbformat.write(notebook, path)
    return path


#: A plugin for the nbval run: it keeps what every cell printed (stdout and stderr,
#: warnings and progress bars included), so the same run is checked for English words.
_PRINTED_PLUGIN = """
import os


def pytest_runtest_teardown(item):
    outputs = getattr(item, "test_outputs", None) or []
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    with open(os.environ["SAMKIT_PRINTED_FILE"], "a", encoding="utf-8") as printed:
        printed.write(text)
"""


@pytest.mark.slow  # executes the notebook
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_under_nbval(name: str, tmp_path: Path) -> None:
    """nbval on the bundled model; and every word the learner reads there is Spanish."""
    notebook = _with_reference_outputs(name, tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "keep_printed.py").write_text(_PRINTED_PLUGIN, encoding="utf-8")
    printed_file = tmp_path / "printed.txt"
    env = {
        **os.environ,
        **run_notebooks.CHECK_ENV,
        "SAMKIT_OUTPUT_DIR": str(tmp_path / "outputs"),
        "SAMKIT_PRINTED_FILE": str(printed_file),
        "MPLBACKEND": "Agg",
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        "-p",
        "keep_printed",
        "-p",
        "no:cacheprovider",
        "-q",
        "-c",
        str(tmp_path / "pytest.ini"),
        "--rootdir",
        str(tmp_path),
        str(notebook),
    ]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    report = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, f"nbval failed on {name}:\n{report}"
    # every cell ran: nbval reports one passed item per code cell
    code_cells = sum(
        1
        for cell in run_notebooks.nbformat.read(notebook, as_version=4).cells
        if cell.cell_type == "code"
    )
    assert re.search(rf"\b{code_cells} passed\b", result.stdout), report
    # the notebook wrote its exports under SAMKIT_OUTPUT_DIR, never into the repository
    assert not (NOTEBOOKS / "samkit_outputs").exists()
    printed = printed_file.read_text(encoding="utf-8")
    assert printed.strip(), "the plugin kept what the cells printed"
    assert english_words(printed) == [], printed[-3000:]


# ------------------------------------------------------------------ the photo path

#: The photo path that every Colab learner takes: a real architecture (vit_b, full size),
#: the bundled photos instead of the scenes, on the CPU. The automatic generator's grid is
#: cut to 4 x 4 points (``SAMKIT_AMG_POINTS_PER_SIDE``), since the values mean nothing
#: with random weights and a full grid takes minutes per run here.
PHOTO_ENV: dict[str, str] = {
    "SAMKIT_MODEL": "vit_b",
    "SAMKIT_DEVICE": "cpu",
    "SAMKIT_AMG_POINTS_PER_SIDE": "4",
    # notebook 2's fast=True: float32, so that vit_b is converted once in a test run
    # (the checkpoint and its cache are shared with tests/fast/test_encoder.py); the int8 trial
    # on vit_b is measured by make bench
    "SAMKIT_FAST_PRECISION": "f32",
    # notebook 7: SAM 2.1 and SAM 3 cannot be downloaded here either
    "SAMKIT_HF_WEIGHTS": "small",
    "MPLBACKEND": "Agg",
}


def _stdout(notebook: Any) -> str:
    return "".join(run_notebooks.stdout_of(cell) for cell in notebook.cells)


def _printed(notebook: Any) -> str:
    """Everything the learner reads under the cells: stdout and stderr (warnings, bars)."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_on_the_photo_path(
    name: str, random_vit_b_checkpoint: Path, tmp_path: Path
) -> None:
    env = {
        **PHOTO_ENV,
        "SAMKIT_CHECKPOINT": str(random_vit_b_checkpoint),
        # nothing may be downloaded: an empty weights folder and a mirror that is not there
        "SAMKIT_HOME": str(tmp_path / "weights"),
        "SAMKIT_WEIGHTS_URL": "http://127.0.0.1:9/",
        "SAMKIT_OUTPUT_DIR": str(tmp_path / "outputs"),
    }
    notebook, seconds, error = run_notebooks.execute(NOTEBOOKS / name, env)
    assert error is None, f"{name} failed on the photo path after {seconds:.0f} s:\n{error}"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code), name
    printed = _stdout(notebook)
    # every printed word Spanish, warnings and progress bars included
    assert english_words(_printed(notebook)) == [], _printed(notebook)[-3000:]
    # no scaffolding: nothing about exact masks or generated shapes on a photo (notebook 8
    # fine-tunes on generated rings, whose exact masks it has on every path)
    if not name.startswith("08_"):
        assert "máscara exacta" not in printed and "figuras" not in printed
    # the photos, never the scenes of the shapes model
    assert "Escena generada" not in printed
    if "sample.credit" in "".join(cell.source for cell in code):
        assert "Foto:" in printed, printed
    if name == "01_configuracion.ipynb":
        # SAMKIT_CHECKPOINT is the file notebook 1 finds and loads, with no download
        model, checkpoint = (
            run_notebooks.stdout_of(notebook.cells[i])
            for i in run_notebooks.checked_cells(notebook)
        )
        assert model == "modelo: vit_b\n"
        assert checkpoint.startswith(f"{random_vit_b_checkpoint.name} está en el disco: sí\n")
        assert "Sam vit_b cargado en cpu" in printed
    if name.startswith("02_"):
        _check_the_fast_vit_b(random_vit_b_checkpoint, printed)
    if name.startswith("08_"):
        _check_the_fine_tuned_vit_b(tmp_path / "outputs" / name.removesuffix(".ipynb"), notebook)
    assert not (tmp_path / "weights").exists() or not any((tmp_path / "weights").iterdir())


def _check_the_fast_vit_b(checkpoint: Path, printed: str) -> None:
    """Notebook 2 on the photo path: vit_b converted to OpenVINO float32, cached beside
    its checkpoint, and its embedding of the photo the same as PyTorch's (to 1e-4)."""
    assert "Encoder rápido: OpenVINO en la CPU, en float32" in printed, printed
    assert (checkpoint.parent / cache.CACHE_DIRNAME).is_dir()
    [difference] = re.findall(r"diferencia relativa entre los dos embeddings: (\S+)\n", printed)
    assert float(difference) < 1e-4, difference


def _check_the_fine_tuned_vit_b(folder: Path, notebook: Any) -> None:
    """Notebook 8 on the photo path: a full-size vit_b fine-tuned on the CPU, loaded back.

    Three epochs over 7 images, embedded once each on the fast encoder; the checkpoint is
    a plain state dict that ``SAMKIT_CHECKPOINT`` loads, and the fine-tuned model is
    loaded fast with its base's conversion, converting nothing.
    """
    import torch

    record = json.loads((folder / "mi_sam.json").read_text(encoding="utf-8"))
    assert record["model_type"] == "vit_b" and record["settings"]["fast"] is True
    assert [h["epoch"] for h in record["history"]] == [0, 1, 2, 3]
    images = record["data"]["train_images"] + record["data"]["val_images"]
    embeddings = list((folder / "mi_sam.finetune" / "embeddings").glob("*-openvino-f32.pt"))
    assert len(images) == record["data"]["images"] == len(embeddings) == 7
    [loads] = [c for c in notebook.cells if "ajustado = samkit.load_sam(" in c.source]
    assert loads.execution_count is not None
    assert "convirtiendo" not in run_notebooks.stdout_of(loads), run_notebooks.stdout_of(loads)
    assert any((folder / "fast-cache").glob("encoder-*-f32-v*"))
    checkpoint = folder / "mi_sam.pth"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAMKIT_MODEL", "vit_b")
        patch.setenv("SAMKIT_CHECKPOINT", str(checkpoint))
        sam = samkit.load_sam(device="cpu")
    weights = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert sam.state_dict().keys() == weights.keys()
    assert all(torch.equal(v, weights[k]) for k, v in sam.state_dict().items())


# ------------------------------------------------------------------ the Colab cell


def test_every_notebook_has_the_same_colab_cell() -> None:
    cells = {name: _source(_code_cell(_load(name), 0)) for name in NOTEBOOK_NAMES}
    assert len(set(cells.values())) == 1, cells


def _scratch_tree(folder: Path) -> Path:
    """The working tree (tracked and untracked, not ignored files) as a one-commit repo."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    origin = folder / "origin"
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if source.is_file():
            target = origin / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    git = ["git", "-c", "user.name=samkit", "-c", "user.email=samkit@localhost"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=origin, check=True)
    subprocess.run([*git, "add", "-A"], cwd=origin, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], cwd=origin, check=True)
    return origin


#: Runs in the scratch environment: the Colab cell, as Colab's kernel would, with a
#: stand-in ``google.colab``; then reports what torch and samkit are afterwards.
_COLAB_DRIVER = """
import json, sys, types
import torch
before = [torch.__version__, torch.__file__]
sys.modules["google.colab"] = types.ModuleType("google.colab")  # what Colab's kernel loads
sys.path.insert(0, "")  # a kernel imports from its working folder, as Colab's does
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
exit_codes = []  # one per ! command
run_system = shell.system
def system(command):
    run_system(command)
    exit_codes.append([command, shell.user_ns.get("_exit_code")])
shell.system = system
result = shell.run_cell(open(sys.argv[1], encoding="utf-8").read())
result.raise_error()
import samkit
from samkit import locations
print(json.dumps({
    "torch_before": before,
    "torch_after": [sys.modules["torch"].__version__, sys.modules["torch"].__file__],
    "exit_codes": exit_codes,
    "samkit": samkit.__file__,
    "model_file": str(locations.data_file("models", "sam_shapes.pt")),
    "photo_shape": list(samkit.sample_image("coffee", model_type="vit_b").image.shape),
}))
"""


def _offline_env(venv: Path) -> dict[str, str]:
    """This process's environment for a command in ``venv``: no samkit or Python
    variables of this one, the venv's bin first, pip offline (``PIP_NO_INDEX``)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SAMKIT_", "PYTHON", "VIRTUAL_ENV", "PIP_"))
    }
    env.update(
        {
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "PIP_NO_INDEX": "1",
            "PIP_NO_BUILD_ISOLATION": "0",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "MPLBACKEND": "Agg",
        }
    )
    return env


def _venv_seeing_these_packages(folder: Path) -> tuple[Path, Path]:
    """A fresh venv in ``folder`` that imports this environment's installed packages.

    A plain path line, as ``--system-site-packages`` gives a system Python's: the shared
    packages are importable, their own .pth files (this checkout's editable samkit among
    them) are not run. Returns the venv's python and its site-packages.
    """
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    python = folder / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    shared = os.path.realpath(sysconfig.get_paths()["purelib"])
    (site / "shared_packages.pth").write_text(shared + "\n", encoding="utf-8")
    return python, site


@pytest.mark.slow
def test_colab_cell_installs_samkit_and_leaves_torch(tmp_path: Path) -> None:
    """The first cell of every notebook, in a scratch Python that already has torch.

    Offline: the clone URL is a local snapshot of this tree (``file://``), and pip finds
    every dependency already installed (the scratch environment sees this environment's
    packages, as Colab's Python has its own), so ``PIP_NO_INDEX`` is set and any attempt
    to download fails the test. Build isolation is off, because it would download
    hatchling; the hatchling seen here builds the editable install instead.
    """

    import torch

    origin = _scratch_tree(tmp_path)
    content = tmp_path / "content"
    content.mkdir()
    scratch = tmp_path / "scratch"
    python, scratch_site = _venv_seeing_these_packages(scratch)

    cell = _source(_code_cell(_load(NOTEBOOK_NAMES[0]), 0))
    url = f"{REPOSITORY}.git"
    assert url in cell and "/content" in cell
    cell = cell.replace(url, origin.as_uri()).replace("/content", str(content))
    (tmp_path / "cell.py").write_text(cell, encoding="utf-8")
    (tmp_path / "driver.py").write_text(_COLAB_DRIVER, encoding="utf-8")
    env = _offline_env(scratch)
    result = subprocess.run(
        [str(python), str(tmp_path / "driver.py"), str(tmp_path / "cell.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, report
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    clone = content / "samkit"
    # torch untouched: the same version from the same file, nothing installed beside it
    here = [torch.__version__, os.path.realpath(torch.__file__)]
    assert facts["torch_before"] == facts["torch_after"] == here
    assert not list(scratch_site.glob("torch*")), "the Colab cell installed torch"
    # the clone and the two installs ran, and each succeeded
    commands = [command for command, _ in facts["exit_codes"]]
    assert len(commands) == 3 and "git clone" in commands[0], commands
    assert all(code == 0 for _, code in facts["exit_codes"]), report
    # samkit comes from the clone, with its data
    assert facts["samkit"] == str(clone / "samkit" / "__init__.py")
    assert facts["model_file"] == str(clone / "data" / "models" / "sam_shapes.pt")
    assert facts["photo_shape"] == [400, 600, 3]
    # and the editable install works in a fresh process of that Python, from anywhere
    fresh = subprocess.run(
        [str(python), "-c", "import samkit; print(samkit.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fresh.stdout.strip() == str(clone / "samkit" / "__init__.py"), fresh.stderr


# ------------------------------------------------------------------ what the notebooks teach

#: For each notebook, stock segment-anything (or supervision, OpenCV) calls its code
#: must show for the step it teaches, before any samkit helper does the same.
STOCK_CALLS: dict[str, list[str]] = {
    "01_configuracion.ipynb": [
        "from segment_anything import sam_model_registry",
        "sam_model_registry[MODEL_TYPE](checkpoint=checkpoint)",
        "cv2.imread(",
        "cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)",
        'torch.device("cuda" if torch.cuda.is_available() else "cpu")',
    ],
    "02_como_funciona_sam.ipynb": [
        "SamPredictor(sam)",
        "predictor.set_image(",
        "predictor.predict(",
    ],
    "03_mascaras_automaticas.ipynb": [
        "from segment_anything import SamAutomaticMaskGenerator",
        "SamAutomaticMaskGenerator(sam)\n",
        "sv.MaskAnnotator(",
        "sv.Detections.from_sam(",
        "sv.mask_to_polygons(",
    ],
    "04_caja_con_el_mouse.ipynb": [
        "SamPredictor(sam)",
        "predictor.predict(box=",
        "sv.Detections(xyxy=sv.mask_to_xyxy(masks=masks)",
        "sv.MaskAnnotator(",
    ],
    "05_puntos_cajas_y_detector.ipynb": [
        "SamPredictor(sam)",
        "mask_input=logits",
        "predictor.predict_torch(",
        "predictor.transform.apply_boxes_torch(",
    ],
    "06_proba_con_tu_imagen.ipynb": ["SamPredictor(sam)", "predictor.predict(box="],
    "07_sam2_y_sam3.ipynb": ["SamPredictor(sam)", "predictor.predict(box="],
    "08_ajusta_sam_a_tus_objetos.ipynb": ["SamPredictor(sam)", ".predict(box="],
}

#: The samkit helpers that may only come after the stock call they stand for.
HELPER_AFTER: dict[str, tuple[str, str]] = {
    "01_configuracion.ipynb": ("sam_model_registry[MODEL_TYPE]", "samkit.load_sam("),
    "03_mascaras_automaticas.ipynb": (
        "SamAutomaticMaskGenerator(sam)",
        "samkit.FastMaskGenerator(",
    ),
    "04_caja_con_el_mouse.ipynb": ("sv.MaskAnnotator(", "samkit.annotate("),
}


def _code(name: str) -> str:
    return "\n".join(
        _source(cell) + "\n" for cell in _load(name)["cells"] if cell["cell_type"] == "code"
    )


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_each_notebook_shows_the_stock_calls_of_its_step(name: str) -> None:
    code = _code(name)
    missing = [call for call in STOCK_CALLS[name] if call not in code]
    assert missing == [], f"{name} does not show {missing}"
    if name in HELPER_AFTER:
        stock, helper = HELPER_AFTER[name]
        assert code.index(stock) < code.index(helper), f"{name}: {helper} before {stock}"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_no_scaffolding_in_the_text(name: str) -> None:
    text = "\n".join(_source(cell) for cell in _load(name)["cells"])
    for phrase in (
        "como en los tests",
        "en los tests",
        "con la verdad",
        "nombre bueno",
        "<details>\n<summary><b>¿Ves figuras",
    ):
        assert phrase not in text, f"{name}: {phrase!r}"
    for phrase in ("image encoder", "Image Encoder", "mask decoder", "prompt encoder"):
        assert phrase not in text, f"{name}: one term per concept, not {phrase!r}"


def test_only_notebook_1_tells_what_the_bundled_model_is() -> None:
    says = [name for name in NOTEBOOK_NAMES if "model_note(" in _code(name)]
    assert says == ["01_configuracion.ipynb"]
    assert "figuras geométricas" in samkit.notes.model_note("shapes")
    assert "figuras" not in samkit.notes.model_note("vit_b")


def test_notebook_1_has_the_glossary_and_the_setup_for_every_learner() -> None:
    text = "\n".join(_source(cell) for cell in _load(NOTEBOOK_NAMES[0])["cells"])
    for word in (
        "**encoder**",
        "**embedding**",
        "**prompt**",
        "**máscara**",
        "**puntaje**",
        "**IoU**",
    ):
        assert f"| {word} |" in text, word
    assert 'pip install -e ".[notebooks]"' in text and "git clone" in text and "Windows" in text
    assert "PESOS_EN_DRIVE = True" in text


@pytest.mark.parametrize("name", NOTEBOOK_NAMES[1:])
def test_the_embedding_and_automatic_mask_cells_take_the_fast_path(name: str) -> None:
    code = _code(name)
    assert 'samkit.load_sam(fast="auto")' in code
    assert "print(samkit.notes.fast_note(sam))" in code
    if "Generator(" in code and "generate(" in code:
        # the automatic masks run through samkit's faster generator, told in advance
        assert "samkit.FastMaskGenerator(sam" in code
        assert "samkit.fast.estimate_line(sam" in code
        assert "SamAutomaticMaskGenerator(sam).generate" not in code
        assert "mask_generator.generate" not in code or "FastMaskGenerator" in code


def test_fine_tuning_embeds_on_the_fast_path_and_says_how_to_turn_it_off() -> None:
    notebook = "08_ajusta_sam_a_tus_objetos.ipynb"
    assert 'samkit.finetune.finetune(datos, out=carpeta / "mi_sam.pth"' in _code(notebook)
    assert 'fast="auto")' in _code(notebook)
    text = "".join(_source(c) for c in _load(notebook)["cells"] if c["cell_type"] == "markdown")
    assert "SAMKIT_FAST=0" in text


def test_the_second_cell_is_the_same_everywhere_and_offers_drive() -> None:
    cells = {name: _source(_code_cell(_load(name), 1)) for name in NOTEBOOK_NAMES}
    assert len(set(cells.values())) == 1, cells
    assert "samkit.drive.use_drive(PESOS_EN_DRIVE)" in cells[NOTEBOOK_NAMES[0]]
    assert "PESOS_EN_DRIVE = False" in _source(_code_cell(_load(NOTEBOOK_NAMES[0]), 0))


def test_the_word_check_finds_english() -> None:
    assert english_words("fast=True: OpenVINO is not installed; using the plain encoder") == [
        "True", "is", "not", "installed", "using", "the",
    ]  # fmt: skip
    assert english_words("máscaras: 3 · puntajes: [0.9] · point_coords · IoU 0.95") == []
    assert english_words("guardado en /tmp/pytest-of-root/the_mask.png") == []
    assert english_words('{"label": "persona", "score": 0.96}') == []
    assert english_words("datos de ejemplo de scikit-image") == []
    assert english_words("colección «NASA Great Images»") == []
    assert english_words('{"image": "the scene"}') == ["the"]


# ------------------------------------------------------------------ a laptop, with pip alone

_EXTRAS: dict[str, list[str]] = _PYPROJECT["project"]["optional-dependencies"]


def test_the_notebooks_extra_is_jupyter_and_nothing_heavy() -> None:
    names = {_requirement_name(r) for r in _EXTRAS["notebooks"]}
    assert {"jupyterlab", "ipykernel", "ipywidgets"} <= names
    # no Ray, no browser, no test tools; OpenVINO is the separate fast extra
    assert not names & {"ray", "playwright", "pytest", "nbval", "openvino", "nncf"}
    assert {"openvino", "nncf"} <= {_requirement_name(r) for r in _EXTRAS["fast"]}


#: Runs in the fresh venv: what the notebooks import, and where samkit comes from.
_IMPORTS = """
import json, cv2, ipykernel, ipywidgets, jupyter_bbox_widget, pycocotools, segment_anything
import supervision, torch, transformers, samkit
print(json.dumps({"samkit": samkit.__file__}))
"""


@pytest.mark.slow
def test_pip_alone_installs_what_the_notebooks_need(tmp_path: Path) -> None:
    """The laptop path of notebook 1 and the README, ``pip install -e ".[notebooks]"``.

    In a fresh venv, on a snapshot of this tree as a learner's clone. Offline: the venv
    sees this environment's installed packages through a path file, as a venv made with
    ``--system-site-packages`` sees a system Python's (torch is never downloaded), and
    ``PIP_NO_INDEX`` is set, so pip must resolve samkit's requirements and the
    ``notebooks`` extra against what is installed, and any missing requirement or
    attempted download fails the test. Build isolation is off (hatchling from here).
    Then, in that venv: the notebooks' imports work, samkit comes from the clone, and
    notebook 1 runs top to bottom (nbconvert, the venv's own kernel).
    """

    origin = _scratch_tree(tmp_path)
    venv = tmp_path / "venv"
    python, _ = _venv_seeing_these_packages(venv)
    env = _offline_env(venv)
    # the venv's own old setuptools would hide the shared one that torch asks for
    subprocess.run(
        [str(python), "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"],
        env=env,
        check=True,
        timeout=300,
    )
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-e", f"{origin}[notebooks]"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, (install.stdout + install.stderr)[-4000:]
    imports = subprocess.run(
        [str(python), "-c", _IMPORTS], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert imports.returncode == 0, imports.stderr[-4000:]
    facts = json.loads(imports.stdout.strip().splitlines()[-1])
    assert facts["samkit"] == str(origin / "samkit" / "__init__.py")
    run_env = {**env, **run_notebooks.CHECK_ENV, "SAMKIT_OUTPUT_DIR": str(tmp_path / "out")}
    executed = tmp_path / "executed.ipynb"
    run = subprocess.run(
        [
            str(python),
            "-m",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.kernel_name=python3",
            "--output",
            str(executed),
            str(origin / "notebooks" / NOTEBOOK_NAMES[0]),
        ],
        cwd=origin / "notebooks",
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    printed = _stdout(run_notebooks.nbformat.read(executed, as_version=4))
    assert "Sam shapes cargado en cpu por samkit" in printed, printed
