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
MODULES = sorted(PACKAGE.rglob("*.py"))


# The package's import rules, each a function of a package folder so that it can be
# shown failing on a small planted tree. A module's node is its dotted name inside the
# package: ``samkit/fast/cache.py`` is ``fast.cache``, ``samkit/fast/__init__.py`` is
# ``fast``; the facade ``samkit/__init__.py`` is ``""``.


def node_of(package: Path, path: Path) -> str:
    """The node of the module at ``path`` (``fast.cache``, ``fast``; ``""`` the facade)."""
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_nodes(package: Path) -> set[str]:
    """Every module and subpackage of the package, as nodes (the facade left out)."""
    return {node_of(package, path) for path in package.rglob("*.py")} - {""}


def _absolute(node: str, is_package: bool, imported: ast.ImportFrom) -> str | None:
    """The dotted name (``samkit.x.y``) an ``ImportFrom`` reads from, relative ones too."""
    if imported.level == 0:
        return imported.module
    base = ["samkit", *node.split(".")] if node else ["samkit"]
    if not is_package:
        base.pop()
    base = base[: len(base) - (imported.level - 1)]
    return ".".join([*base, *([imported.module] if imported.module else [])])


def _to_node(dotted: str, nodes: set[str]) -> str | None:
    """The longest module node that ``samkit.<...>`` names; ``""`` for the facade itself."""
    parts = dotted.split(".")
    if parts[0] != "samkit":
        return None
    for end in range(len(parts), 1, -1):
        if ".".join(parts[1:end]) in nodes:
            return ".".join(parts[1:end])
    return ""


def imports_of(package: Path, path: Path) -> list[tuple[int, str, str | None]]:
    """Every samkit import in ``path`` (at the top or inside functions).

    Returns:
        ``(line, node, name)``: the module node imported from, and the name imported
        from it (``None`` for ``import samkit.x``, or when the name is itself a module).
    """
    nodes = module_nodes(package)
    node = node_of(package, path)
    found: list[tuple[int, str, str | None]] = []
    for item in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(item, ast.Import):
            for alias in item.names:
                target = _to_node(alias.name, nodes)
                if target is not None:
                    found.append((item.lineno, target, None))
        elif isinstance(item, ast.ImportFrom):
            source = _absolute(node, path.name == "__init__.py", item)
            if source is None or _to_node(source, nodes) is None:
                continue
            for alias in item.names:
                module = _to_node(f"{source}.{alias.name}", nodes)
                if module is not None and module.endswith(alias.name):
                    found.append((item.lineno, module, None))
                else:
                    found.append((item.lineno, str(_to_node(source, nodes)), alias.name))
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module node -> the module nodes it imports (the facade left out on both sides)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        node = node_of(package, path)
        if node:
            graph[node] = {target for _, target, _ in imports_of(package, path)} - {"", node}
    return graph


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


def facade_imports(package: Path = PACKAGE) -> list[str]:
    """``import samkit`` or ``from samkit import <not a module>`` inside the package."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if path == package / "__init__.py":
            continue
        for line, target, name in imports_of(package, path):
            if target == "":
                what = "import samkit" if name is None else f"from samkit import {name}"
                found.append(f"{path.relative_to(package)}:{line}: {what}")
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _dotted(expression: ast.expr) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else ``None``."""
    if isinstance(expression, ast.Name):
        return expression.id
    if isinstance(expression, ast.Attribute) and (base := _dotted(expression.value)):
        return f"{base}.{expression.attr}"
    return None


def _module_bindings(package: Path, path: Path, tree: ast.AST) -> dict[str, str]:
    """Local names bound to samkit modules in a file: ``images`` -> ``images``."""
    nodes = module_nodes(package) | {""}
    node = node_of(package, path)
    bound: dict[str, str] = {}
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            for alias in item.names:
                if alias.asname and _to_node(alias.name, nodes) is not None:
                    bound[alias.asname] = str(_to_node(alias.name, nodes))
                elif alias.name.split(".")[0] == "samkit":
                    bound["samkit"] = ""
        elif isinstance(item, ast.ImportFrom):
            source = _absolute(node, path.name == "__init__.py", item)
            for alias in item.names if source else ():
                module = _to_node(f"{source}.{alias.name}", nodes)
                if module and module.endswith(alias.name):
                    bound[alias.asname or alias.name] = module
    return bound


def private_crossings(package: Path = PACKAGE) -> list[str]:
    """Private names (``_name``) imported from, or read off, another samkit module."""
    nodes = module_nodes(package) | {""}
    found = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package)
        for line, target, name in imports_of(package, path):
            if name is not None and _is_private(name):
                found.append(f"{where}:{line}: imports {name} from samkit.{target}".rstrip("."))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bound = _module_bindings(package, path, tree)
        for item in ast.walk(tree):
            if not isinstance(item, ast.Attribute) or not _is_private(item.attr):
                continue
            base = _dotted(item.value)
            if base is None or base.split(".")[0] not in bound:
                continue
            head, *rest = base.split(".")
            dotted = ".".join(filter(None, [bound[head], *rest]))
            if _to_node(f"samkit.{dotted}".rstrip("."), nodes) == dotted:
                found.append(f"{where}:{item.lineno}: uses {base}.{item.attr}")
    return sorted(found, key=lambda f: (f.split(":")[0], int(f.split(":")[1])))


def plant(root: Path, files: dict[str, str]) -> Path:
    """Write a small fake ``samkit`` package under ``root``; return its folder."""
    for name, text in files.items():
        (root / "samkit" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "samkit" / name).write_text(text, encoding="utf-8")
    return root / "samkit"


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
    package = plant(
        tmp_path,
        {
            "__init__.py": "",
            "x.py": "def f():\n    from samkit import model\n    import samkit.env\n",
            "model.py": "",
            "env.py": "",
        },
    )
    assert import_graph(package)["x"] == {"model", "env"}


def test_import_graph_sees_subpackages(tmp_path: Path) -> None:
    package = plant(
        tmp_path,
        {
            "__init__.py": "",
            "env.py": "from samkit.fast import cache\n",
            "fast/__init__.py": "from samkit.fast.cache import Cache\nfrom . import probe\n",
            "fast/cache.py": "from .probe import probe\nfrom samkit import env\n",
            "fast/probe.py": "import samkit.env as e\n",
        },
    )
    assert import_graph(package) == {
        "env": {"fast.cache"},
        "fast": {"fast.cache", "fast.probe"},
        "fast.cache": {"fast.probe", "env"},
        "fast.probe": {"env"},
    }
    assert find_cycle(import_graph(package)) == ["env", "fast.cache", "env"]


def test_a_planted_cycle_through_a_subpackage_init_is_found(tmp_path: Path) -> None:
    package = plant(
        tmp_path,
        {
            "__init__.py": "",
            "model.py": "def load():\n    from samkit.fast import accelerate\n",
            "fast/__init__.py": "from samkit.fast.trial import accelerate\n",
            "fast/trial.py": "from samkit.model import load\n",
        },
    )
    assert find_cycle(import_graph(package)) == ["fast", "fast.trial", "model", "fast"]


def test_a_planted_facade_import_is_found(tmp_path: Path) -> None:
    package = plant(
        tmp_path,
        {
            "__init__.py": "from samkit.model import load_sam\n__version__ = '1'\n",
            "model.py": "def load_sam():\n    import samkit\n",
            "cli.py": "from samkit import env, load_sam\nfrom samkit import __version__\n",
            "env.py": "",
            "fast/__init__.py": "from .. import load_sam\n",
        },
    )
    assert facade_imports(package) == [
        "cli.py:1: from samkit import load_sam",
        "cli.py:2: from samkit import __version__",
        "fast/__init__.py:1: from samkit import load_sam",
        "model.py:2: import samkit",
    ]


def test_a_planted_private_name_across_modules_is_found(tmp_path: Path) -> None:
    package = plant(
        tmp_path,
        {
            "__init__.py": "",
            "images.py": "def _open(): ...\ndef open(): ...\n",
            "export.py": (
                "from samkit import images\nfrom samkit.images import _open, open\n"
                "import samkit.images\nimport samkit.images as im\n"
                "images._open()\nsamkit.images._open()\nim._open()\nimages.open()\n"
                "self._open()\n"
            ),
            "fast/__init__.py": "",
            "fast/cache.py": "from .probe import _probe\nfrom . import probe\nprobe._probe()\n",
            "fast/probe.py": "def _probe(): ...\n",
        },
    )
    assert private_crossings(package) == [
        "export.py:2: imports _open from samkit.images",
        "export.py:5: uses images._open",
        "export.py:6: uses samkit.images._open",
        "export.py:7: uses im._open",
        "fast/cache.py:1: imports _probe from samkit.fast.probe",
        "fast/cache.py:3: uses probe._probe",
    ]


def test_samkit_import_graph_is_acyclic() -> None:
    graph = import_graph()
    assert {"model", "weights", "locations", "env", "files", "checks"} <= set(graph)
    assert find_cycle(graph) is None


def test_no_module_imports_the_package_facade() -> None:
    assert facade_imports() == []


def test_no_private_name_is_used_across_modules() -> None:
    assert private_crossings() == []


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
    assert wheel.name.startswith(f"samkit-{samkit.__version__}-")  # the one version
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
