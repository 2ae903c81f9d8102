"""The package as a whole: its import graph, its public names, where it reads paths and
environment variables, and a wheel that works without the repository."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import samkit
from samkit import env

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "samkit"
MODULES = sorted(PACKAGE.glob("*.py"))


def _samkit_imports(path: Path) -> set[str]:
    """The samkit modules that ``path`` imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "samkit" and len(parts) > 1 and (PACKAGE / f"{parts[1]}.py").is_file():
                found.add(parts[1])
    found.discard(path.stem)
    return found


def import_graph() -> dict[str, set[str]]:
    """samkit module -> the samkit modules it imports (``__init__`` left out)."""
    return {path.stem: _samkit_imports(path) for path in MODULES if path.stem != "__init__"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of nodes (first == last), or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return [*path[path.index(child) :], child]
            if child not in state and (cycle := visit(child)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({}, None),  # empty
        ({"a": {"b"}, "b": set()}, None),  # a chain
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),  # two modules import each other
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),  # a longer loop
    ],
)
def test_find_cycle(graph: dict[str, set[str]], cycle: list[str] | None) -> None:
    assert find_cycle(graph) == cycle


def test_import_graph_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "x.py"
    module.write_text("def f():\n    from samkit import model\n    import samkit.env\n")
    assert _samkit_imports(module) == {"model", "env"}


def test_samkit_import_graph_is_acyclic() -> None:
    graph = import_graph()
    assert {"model", "weights", "locations", "env"} <= set(graph)
    assert find_cycle(graph) is None


def test_public_names_are_few_and_real() -> None:
    assert len(samkit.__all__) <= 30, sorted(samkit.__all__)
    assert len(set(samkit.__all__)) == len(samkit.__all__)
    for name in samkit.__all__:
        assert getattr(samkit, name) is not None, name


def test_every_public_name_is_used_by_a_notebook_or_documented_in_the_readme() -> None:
    notebooks = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.ipynb"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unused = [
        name
        for name in samkit.__all__
        if f"samkit.{name}" not in notebooks and not re.search(rf"`{name}\b", readme)
    ]
    assert unused == []


@pytest.mark.parametrize(
    ("owner", "pattern"),
    [
        # only samkit.locations works out a path from where samkit is installed
        ("locations", r"__file__|importlib\.resources"),
        # only samkit.env reads environment variables
        ("env", r"os\.environ|os\.getenv|getenv\("),
    ],
)
def test_only_one_module_does_it(owner: str, pattern: str) -> None:
    offenders = [
        path.name
        for path in MODULES
        if path.stem != owner and re.search(pattern, path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_every_samkit_variable_is_registered_and_in_the_readme() -> None:
    code = "".join(path.read_text(encoding="utf-8") for path in MODULES)
    used = set(re.findall(r"\"(SAMKIT_[A-Z_]+)\"", code))
    assert used <= set(env.VARIABLES), used - set(env.VARIABLES)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = {m for m in re.findall(r"^\| `(SAMKIT_[A-Z_]+)` \|", readme, flags=re.MULTILINE)}
    assert table == set(env.VARIABLES)


@pytest.mark.slow
def test_wheel_carries_its_data_and_works_without_the_repository(tmp_path: Path) -> None:
    """Build the wheel, install it into a scratch folder, use it from a fresh interpreter."""
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    (wheel,) = dist.glob("samkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for needed in (
        "samkit/data/models/sam_shapes.pt",
        "samkit/data/images/chelsea.png",
        "samkit/data/annotations/astronaut.json",
        "samkit/py.typed",
    ):
        assert needed in names, needed
    assert wheel.stat().st_size < 8_000_000
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    script = (
        "import samkit, samkit.locations as loc\n"
        "assert str(loc.data_dir()).startswith(TARGET), loc.data_dir()\n"
        "assert loc.repo_root() is None\n"
        "sam = samkit.load_sam('shapes', device='cpu')\n"
        "sample = samkit.sample_image('chelsea')\n"
        "photo = samkit.sample_image('chelsea', model_type='vit_b')\n"
        "print(samkit.__file__, type(sam).__name__, sample.image.shape, photo.image.shape)\n"
    ).replace("TARGET", repr(str(target)))
    clean_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    clean_env.update(PYTHONPATH=str(target), SAMKIT_MODEL="shapes")
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(target)!r})\n" + script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert words[0].startswith(str(target)), words
    assert words[1] == "Sam"
    assert "(480, 640, 3)" in result.stdout and "(300, 451, 3)" in result.stdout
