"""Run the tutorial notebooks headless: the demo into build/, or the checked outputs.

Usage:
    python -m tools.run_notebooks demo [--model shapes|vit_b|vit_l|vit_h] [--out build/demo]
        Execute every notebook into ``<out>/<name>.ipynb`` (with outputs), extract every
        figure to ``<out>/figures/<name>_cell<N>.png``, write the exported masks under
        ``<out>/outputs/``, and print each notebook's run time.

    python -m tools.run_notebooks expected
        Execute every notebook as the tests do (``SAMKIT_MODEL=shapes`` on the CPU) and
        write the printed output of every cell tagged ``nbval-check-output`` to
        ``tests/notebook_outputs.json``, the reference that nbval compares against. Run it
        (``make nbval-outputs``) when the bundled model or a notebook changes, and
        review the diff: the tests also check that the reference itself makes sense.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
EXPECTED = ROOT / "tests" / "notebook_outputs.json"

#: The cell tag that marks a cell whose printed output is checked (nbval reads it).
CHECK_TAG = "nbval-check-output"

#: The same mark as a comment in the code, nbval's other form: still read, but a
#: learner sees it, so the notebooks use the tag.
CHECK_MARK = "NBVAL_CHECK_OUTPUT"

#: The environment of every checked run: the bundled model, on the CPU, one thread. One
#: thread gives the same numbers on any machine, and on a busy machine it is far faster
#: than a thread pool whose threads wait for each other (~15 ms instead of ~700 ms for
#: set_image on two loaded cores).
CHECK_ENV: dict[str, str] = {
    "SAMKIT_MODEL": "shapes",
    "SAMKIT_DEVICE": "cpu",
    # SAM 2.1 and SAM 3 (notebook 7): small configurations, random weights, no download
    "SAMKIT_HF_WEIGHTS": "small",
    # fast="auto" on the CPU: the OpenVINO encoder in float32 (the same embedding to about
    # 1e-6), never a precision chosen by timing this machine, so the numbers are stable
    "SAMKIT_FAST_PRECISION": "f32",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

#: Seconds a single cell may run.
CELL_TIMEOUT = 600


def notebook_paths() -> list[Path]:
    """The tutorial notebooks, in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def is_tagged(cell: Any) -> bool:
    """Whether a cell carries the ``nbval-check-output`` tag."""
    return CHECK_TAG in cell.get("metadata", {}).get("tags", [])


def checked_cells(notebook: Any) -> list[int]:
    """Indexes of the code cells whose output nbval checks (tagged, or marked in a comment)."""
    return [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (is_tagged(cell) or CHECK_MARK in cell.source)
    ]


def stdout_of(cell: Any) -> str:
    """Everything a code cell printed to stdout."""
    return "".join(
        output.get("text", "")
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stdout"
    )


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables (inherited by the kernel) for the duration."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(path: Path, env: Mapping[str, str]) -> tuple[Any, float, str | None]:
    """Execute a notebook in a fresh kernel of this interpreter.

    Returns:
        The executed notebook (up to the failing cell, if one failed), the seconds it
        took, and the error of the failing cell or ``None``.
    """
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    error = None
    start = time.perf_counter()
    with environment(env):
        try:
            # The kernel process's own log (not the cells' output) is only noise here.
            client.execute(stderr=subprocess.DEVNULL)
        except CellExecutionError as failure:
            error = str(failure)
    return notebook, time.perf_counter() - start, error


def extract_figures(notebook: Any, stem: str, folder: Path) -> list[Path]:
    """Write every PNG output of a notebook to ``folder/<stem>_cell<N>[_<k>].png``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, cell in enumerate(notebook.cells):
        pngs = [
            output["data"]["image/png"]
            for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})
        ]
        for k, data in enumerate(pngs):
            suffix = f"_{k}" if len(pngs) > 1 else ""
            path = folder / f"{stem}_cell{index:02d}{suffix}.png"
            path.write_bytes(base64.b64decode(data))
            written.append(path)
    return written


def demo(model: str, out: Path) -> int:
    """Execute every notebook into ``out`` with ``model``; print a table of run times."""
    out.mkdir(parents=True, exist_ok=True)
    env = {"SAMKIT_MODEL": model, "SAMKIT_OUTPUT_DIR": str((out / "outputs").resolve())}
    if model == "shapes":
        # offline: SAM 2.1 and SAM 3 at their small random-weight configurations
        env["SAMKIT_HF_WEIGHTS"] = os.environ.get("SAMKIT_HF_WEIGHTS", "small")
        # The bundled model is tiny: one thread is as fast, and much faster on a busy CPU.
        env.update({k: os.environ.get(k, "1") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    total = 0.0
    failed = []
    print(f"model: {model}")
    for path in notebook_paths():
        notebook, seconds, error = execute(path, env)
        total += seconds
        nbformat.write(notebook, out / path.name)
        figures = extract_figures(notebook, path.stem, out / "figures")
        status = "FAILED" if error else "ok"
        print(f"{path.name:40s} {seconds:6.1f} s  {len(figures)} figures  {status}", flush=True)
        if error:
            failed.append(path.name)
            print(error, file=sys.stderr)
    print(f"{'total':40s} {total:6.1f} s  -> {out}")
    if failed:
        print(f"failed: {', '.join(failed)} (see the executed copies in {out})", file=sys.stderr)
        return 1
    return 0


def expected() -> int:
    """Rewrite ``tests/notebook_outputs.json`` from a checked run of every notebook."""
    reference: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as outputs:
        env = {**CHECK_ENV, "SAMKIT_OUTPUT_DIR": outputs}
        for path in notebook_paths():
            notebook, seconds, error = execute(path, env)
            if error:
                print(
                    f"{path.name} failed; {EXPECTED.name} left unchanged\n{error}", file=sys.stderr
                )
                return 1
            reference[path.name] = [stdout_of(notebook.cells[i]) for i in checked_cells(notebook)]
            print(f"{path.name:40s} {seconds:6.1f} s  {len(reference[path.name])} checked cells")
    EXPECTED.write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {EXPECTED.relative_to(ROOT)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="execute the notebooks into build/")
    run_demo.add_argument("--model", default="shapes", help="SAMKIT_MODEL (default: shapes)")
    run_demo.add_argument("--out", type=Path, default=ROOT / "build" / "demo")
    commands.add_parser("expected", help="rewrite tests/notebook_outputs.json")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.model, args.out)
    return expected()


if __name__ == "__main__":
    sys.exit(main())
