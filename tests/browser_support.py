"""Helpers for the browser test: a private JupyterLab server and a headless Chromium.

Everything here talks over 127.0.0.1 only. The server gets its own config, data,
runtime and settings directories (so nothing from the machine's Jupyter setup leaks
in), a kernel spec that runs this interpreter, and settings that keep JupyterLab
quiet: no news, no update check, no autosave, every cell attached to the page.
"""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"

#: Debian's Chromium; the test never downloads a browser.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Installs the browser when it is missing; ``make setup`` runs it.
INSTALL_SCRIPT = ROOT / "tools" / "install_browser.sh"


def install_hint(chromium: Path) -> str:
    """The failure message when ``chromium`` is missing, with the command that installs it
    (the one ``tools/install_browser.sh`` prints when it cannot install by itself)."""
    command = subprocess.run(
        ["bash", str(INSTALL_SCRIPT), "--command"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (
        f"{chromium} is missing: the browser test drives Debian's Chromium. Install it "
        f"with:\n    {command}\n(make setup does this by itself as root or with sudo "
        "that needs no password)"
    )


#: JupyterLab user settings written for the test server.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # every cell stays in the DOM, so the test can read any cell's output
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


class BrowserTestError(AssertionError):
    """A failure of the browser test, with a short slug saying what went wrong.

    ``cell`` is the notebook cell to show in the failure screenshot, if any.
    """

    def __init__(self, reason: str, message: str, cell: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.cell = cell


def fail(reason: str, message: str, cell: int | None = None) -> BrowserTestError:
    """Build the error to raise for a failure named ``reason`` (a file-name slug)."""
    return BrowserTestError(reason, message, cell)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- notebook


@dataclass(frozen=True)
class NotebookLayout:
    """Where the pieces of the box notebook are: indices into the notebook's cells."""

    n_cells: int
    code_cells: list[int]  # the code cells with something to run
    widget_cell: int
    convert_cell: int
    last_code_cell: int
    sample_name: str


def _code_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _parse_python(source: str) -> ast.Module | None:
    """Parse a code cell, ignoring IPython magics and shell lines; None if not Python."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _sample_name(sources: list[str]) -> str:
    """The name passed to ``samkit.sample_image(...)``: a literal or a variable set earlier."""
    constants: dict[str, str] = {}
    for source in sources:
        tree = _parse_python(source)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                if isinstance(node.value.value, str):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            constants[target.id] = node.value.value
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sample_image"
            ):
                arg = node.args[0] if node.args else None
                if arg is None:
                    for keyword in node.keywords:
                        arg = keyword.value
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    return arg.value
                if isinstance(arg, ast.Name) and arg.id in constants:
                    return constants[arg.id]
                raise ValueError(
                    "cannot tell which sample the notebook loads: samkit.sample_image() "
                    f"gets {ast.unparse(arg) if arg is not None else 'no argument'}, "
                    "expected a string or a variable set to one in an earlier cell"
                )
    raise ValueError("the notebook never calls samkit.sample_image(...)")


def notebook_layout(path: Path) -> NotebookLayout:
    """Find the widget cell, the first conversion cell after it, and the sample's name.

    Raises:
        ValueError: If the notebook does not follow the box-widget contract.
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    code = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"]
    sources = {i: _code_source(cells[i]) for i in code}
    widget = [i for i in code if "BBoxWidget(" in sources[i]]
    if not widget:
        raise ValueError(f"{path.name}: no code cell creates a BBoxWidget(...)")
    after = [i for i in code if i > widget[0] and "bboxes_to_xyxy(" in sources[i]]
    if not after:
        raise ValueError(
            f"{path.name}: a code cell after the widget (cell {widget[0]}) must convert "
            "widget.bboxes with samkit.bboxes_to_xyxy(...)"
        )
    non_empty = [i for i in code if sources[i].strip()]
    return NotebookLayout(
        n_cells=len(cells),
        code_cells=non_empty,
        widget_cell=widget[0],
        convert_cell=after[0],
        last_code_cell=non_empty[-1],
        sample_name=_sample_name([sources[i] for i in code]),
    )


# --------------------------------------------------------------------------- geometry


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """IoU of two xyxy boxes."""
    ax0, ay0, ax1, ay1 = np.asarray(a, dtype=float)
    bx0, by0, bx1, by1 = np.asarray(b, dtype=float)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0


def mask_box(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """The tight xyxy box of a mask (max inclusive, as ``supervision.mask_to_xyxy``)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=float)


def as_xyxy(box: Any) -> npt.NDArray[np.float64]:
    """A widget dict (``x, y, width, height``) or an xyxy sequence as an xyxy array."""
    if isinstance(box, dict):
        x, y = float(box["x"]), float(box["y"])
        return np.array([x, y, x + float(box["width"]), y + float(box["height"])])
    values = np.asarray(box, dtype=float).reshape(-1)
    if values.size != 4:
        raise ValueError(f"expected one box of 4 numbers, got {box!r}")
    return values


@dataclass(frozen=True)
class Target:
    """The shape the test draws a box around."""

    index: int
    drag: npt.NDArray[np.float64]  # the box to drag, xyxy in image pixels
    default_index: int  # the shape the notebook's default box is around


def choose_target(masks: npt.NDArray[np.bool_], default_box: Any, margin: float = 4.0) -> Target:
    """Pick the shape to box: another one than the default box's, standing alone.

    A person boxes an object that stands apart. Among the shapes whose box barely
    overlaps the default box and is large enough to drag, take the largest one whose box
    holds (almost) nothing of other shapes; failing that, the one whose box holds the
    least. The drag is that shape's box plus ``margin`` pixels, as the default box.
    """
    default = as_xyxy(default_box)
    boxes = [mask_box(m) for m in masks]
    default_index = int(np.argmax([box_iou(b, default) for b in boxes]))
    height, width = masks.shape[1:]
    candidates: list[tuple[bool, float, int, int]] = []
    for i, box in enumerate(boxes):
        if i == default_index or box_iou(box, default) > 0.3:
            continue
        x0, y0, x1, y1 = box.astype(int)
        if min(x1 - x0, y1 - y0) < 32:
            continue
        inside = masks[:, y0 : y1 + 1, x0 : x1 + 1]
        others = float((np.delete(inside, i, axis=0).any(axis=0) & ~inside[i]).mean())
        # alone first, then the least clutter, then the largest
        candidates.append((others > 0.02, round(others, 2), -int(masks[i].sum()), i))
    if not candidates:
        raise ValueError(
            f"the scene has no shape clearly apart from the default box {default.tolist()}: "
            f"shape boxes {[b.tolist() for b in boxes]}"
        )
    alone = [c for c in candidates if not c[0]]
    index = min(alone, key=lambda c: c[2])[3] if alone else min(candidates)[3]
    x0, y0, x1, y1 = boxes[index]
    drag = np.array(
        [
            max(0.0, x0 - margin),
            max(0.0, y0 - margin),
            min(float(width - 1), x1 + margin),
            min(float(height - 1), y1 + margin),
        ]
    )
    return Target(index=index, drag=drag, default_index=default_index)


def decode_data_url(url: str) -> npt.NDArray[np.uint8]:
    """The RGB pixels of a ``data:image/...;base64,`` URL."""
    match = re.match(r"data:image/[a-z]+;base64,(.*)$", url, re.DOTALL)
    if not match:
        raise ValueError(f"not a base64 image data URL: {url[:60]!r}")
    with Image.open(io.BytesIO(base64.b64decode(match.group(1)))) as image:
        return np.asarray(image.convert("RGB"))


# --------------------------------------------------------------------------- server


class JupyterLabServer:
    """A JupyterLab server on 127.0.0.1 with a random token and private directories."""

    def __init__(self, root_dir: Path, home: Path, env: dict[str, str]) -> None:
        self.root_dir = root_dir
        self.home = home
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "jupyterlab.log"
        self._env = env
        self._process: subprocess.Popen[bytes] | None = None

    def _prepare(self) -> dict[str, str]:
        dirs = {
            name: self.home / name
            for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")
        }
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        # The kernel is this interpreter (the project's venv), whatever else is installed.
        kernel_dir = dirs["data"] / "kernels" / "python3"
        kernel_dir.mkdir(parents=True, exist_ok=True)
        kernel = {
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        (kernel_dir / "kernel.json").write_text(json.dumps(kernel, indent=1), encoding="utf-8")
        # no news feed, no update check: the server never reaches out to the internet
        server_config = {
            "LabApp": {
                "news_url": None,
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            }
        }
        (dirs["config"] / "jupyter_server_config.json").write_text(
            json.dumps(server_config), encoding="utf-8"
        )
        for plugin, values in LAB_SETTINGS.items():
            path = dirs["settings"] / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        env = {
            key: value
            for key, value in os.environ.items()
            # nothing of the caller's Jupyter setup, and inline figures in the notebook
            if not key.startswith(("JUPYTER", "IPYTHON")) and key != "MPLBACKEND"
        }
        env.update(self._env)
        env.update(
            JUPYTER_CONFIG_DIR=str(dirs["config"]),
            JUPYTER_DATA_DIR=str(dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
            IPYTHONDIR=str(dirs["ipython"]),
            JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
            JUPYTER_PLATFORM_DIRS="1",
            # the data dir above (with the kernel spec) comes before the venv's share/
            JUPYTER_PREFER_ENV_PATH="0",
            PYTHONUNBUFFERED="1",
        )
        # no proxy may get between the browser, the server and 127.0.0.1
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    def start(self, timeout: float) -> None:
        """Start the server and wait until its API answers with the token."""
        env = self._prepare()
        command = self.command()
        if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
            command.append("--allow-root")
        self._log = self.log_path.open("wb")
        self._process = subprocess.Popen(
            command,
            cwd=self.root_dir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise fail(
                    "server-exited",
                    f"JupyterLab exited with code {self._process.returncode} before it "
                    f"answered; its log ends with:\n{self.log_tail()}",
                )
            try:
                self.api("status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        raise fail(
            "server-timeout",
            f"JupyterLab did not answer on {self.base_url} within {timeout:.0f} s; "
            f"its log ends with:\n{self.log_tail()}",
        )

    def command(self) -> list[str]:
        """The command line that starts the server."""
        return [
            sys.executable,
            "-m",
            "jupyterlab",
            *self._server_options(),
            # the extension manager would otherwise ask PyPI about extensions
            "--LabApp.extension_manager=readonly",
            f"--LabApp.user_settings_dir={self.home / 'settings'}",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
        ]

    def _server_options(self) -> list[str]:
        return [
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.open_browser=False",
            "--ServerApp.terminals_enabled=False",
        ]

    def api(self, path: str, method: str = "GET") -> Any:
        """Call the server's REST API with the token; the decoded JSON answer."""
        request = urllib.request.Request(
            f"{self.base_url}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def lab_url(self, relative: str) -> str:
        """The JupyterLab URL that opens ``relative`` (a path under the root dir)."""
        return f"{self.base_url}/doc/tree/{relative}?token={self.token}"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Shut the server (and its kernels) down; kill its process group if it lingers."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            try:
                self.api("shutdown", method="POST")
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        # kernels started by the server share its process group
        for sig in (15, 9):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        if process.poll() is None:
            process.wait(timeout=10)
        self._log.close()


class NotebookServer(JupyterLabServer):
    """A Jupyter Notebook 7 server, set up as :class:`JupyterLabServer` (same settings)."""

    def command(self) -> list[str]:
        """The command line that starts Notebook 7."""
        return [
            sys.executable,
            "-m",
            "notebook",
            *self._server_options(),
            f"--JupyterNotebookApp.user_settings_dir={self.home / 'settings'}",
            f"--JupyterNotebookApp.workspaces_dir={self.home / 'workspaces'}",
        ]

    def lab_url(self, relative: str) -> str:
        """The Notebook 7 URL that opens the notebook ``relative``."""
        return f"{self.base_url}/notebooks/{relative}?token={self.token}"


#: The front ends the browser tests run in, by name.
FRONT_ENDS: dict[str, type[JupyterLabServer]] = {
    "lab": JupyterLabServer,
    "notebook": NotebookServer,
}


@contextmanager
def jupyterlab(
    root_dir: Path, home: Path, env: dict[str, str], timeout: float, front_end: str = "lab"
) -> Iterator[JupyterLabServer]:
    """A started ``JupyterLabServer`` (or Notebook 7 server), stopped on exit."""
    server = FRONT_ENDS[front_end](root_dir, home, env)
    try:
        server.start(timeout)
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- artefacts


def clear_screenshots() -> None:
    """Remove the screenshots and notes of an earlier run from build/."""
    BUILD.mkdir(parents=True, exist_ok=True)
    for path in BUILD.glob("browser-*"):
        if path.is_file():
            path.unlink()


def save_failure(page: Any, reason: str, error: BaseException) -> Path:
    """Save ``build/browser-failure-<reason>.png`` and a ``.txt`` beside it saying why.

    Returns:
        The screenshot's path (absent when there was no page to take it from).
    """
    reason = re.sub(r"[^a-z0-9-]+", "-", reason.lower()).strip("-") or "error"
    BUILD.mkdir(parents=True, exist_ok=True)
    shot = BUILD / f"browser-failure-{reason}.png"
    note = shot.with_suffix(".txt")
    note.write_text(f"{reason}\n{type(error).__name__}: {error}\n", encoding="utf-8")
    if page is not None:
        try:
            page.screenshot(path=str(shot), timeout=15_000)
        except Exception as screenshot_error:  # the page may be gone; the note still says why
            with note.open("a", encoding="utf-8") as fh:
                fh.write(f"(no screenshot: {screenshot_error})\n")
    return shot


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    on_timeout: Callable[[], BrowserTestError],
    interval: float = 0.25,
) -> Any:
    """Poll ``condition`` until it returns something truthy; raise ``on_timeout()`` else."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise on_timeout()
        time.sleep(interval)


def copy_notebook(source: Path, dest_dir: Path) -> Path:
    """Copy the notebook, without outputs, into the server's root.

    The run never writes to the repo, and no stored output or execution count can pass
    for one of this run.
    """
    nb = json.loads(source.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    dest = dest_dir / source.name
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return dest


# --------------------------------------------------------------------------- the page

CELL_SELECTOR = ".jp-NotebookPanel .jp-Notebook .jp-Cell"
#: Every URL the browser may not fetch: anything but http(s)://127.0.0.1.
_NOT_LOCAL = re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*")

#: One entry per notebook cell, in order: kind, input prompt, output text, error or not.
_CELLS_JS = """
() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')).map(
  (cell) => {
    const prompt = cell.querySelector('.jp-InputArea-prompt');
    const outputs = Array.from(cell.querySelectorAll('.jp-OutputArea-output'));
    return {
      code: cell.classList.contains('jp-CodeCell'),
      prompt: prompt ? prompt.textContent.trim() : '',
      text: outputs.map((o) => o.innerText).join('\\n'),
      images: cell.querySelectorAll('.jp-OutputArea-output img').length,
      error: outputs.some((o) => /Traceback \\(most recent call last\\)|\\w+Error: /.test(
        o.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr'
          ? o.innerText : '')),
    };
  })
"""

_WIDGET_STATE_JS = """
(cell) => {
  const img = cell.querySelector('img[alt="annotate me"]');
  return {
    img: !!img,
    loaded: !!img && img.complete && img.naturalWidth > 0,
    svg: !!img && !!img.parentElement.parentElement.querySelector('svg'),
    naturalWidth: img ? img.naturalWidth : 0,
    naturalHeight: img ? img.naturalHeight : 0,
    rects: cell.querySelectorAll('svg rect').length,
    output: Array.from(cell.querySelectorAll('.jp-OutputArea-output'))
      .map((o) => o.innerText).join('\\n').slice(0, 500),
  };
}
"""


def prompt_number(prompt: str) -> int | None:
    """The execution count in a cell prompt such as ``[12]:``; None for ``[ ]:``/``[*]:``."""
    match = re.fullmatch(r"\[(\d+)\]:?", prompt)
    return int(match.group(1)) if match else None


#: How long a widget may take to show its image once its cell has run (loaded machine).
WIDGET_GRACE = 45.0


class LabPage:
    """JupyterLab in the browser, seen and used as a person does: menus, clicks, text."""

    def __init__(self, server: JupyterLabServer, page: Any, timeout: float) -> None:
        self.server = server
        self.page = page
        self.timeout = timeout
        self._stages: list[tuple[str, float]] = []
        self.stage = "start"
        # what the page logs: a widget that fails quietly often says why only here
        self.console: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console.append(f"page error: {error}"))

    @property
    def stage(self) -> str:
        """What the test is doing now; names the failure screenshot if it fails."""
        return self._stages[-1][0]

    @stage.setter
    def stage(self, name: str) -> None:
        self._stages.append((name, time.monotonic()))

    def timings(self) -> str:
        """Seconds spent in each stage so far, e.g. ``open-notebook 6.2 s, ...``."""
        now = time.monotonic()
        ends = [t for _, t in self._stages[1:]] + [now]
        return ", ".join(
            f"{name} {end - start:.1f} s"
            for (name, start), end in zip(self._stages, ends, strict=True)
        )

    def _on_console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"console {message.type}: {message.text[:500]}")

    # -- reading
    def cells(self) -> list[dict[str, Any]]:
        """Kind, prompt, output text and error flag of every cell, in order."""
        return list(self.page.evaluate(_CELLS_JS))

    def cell(self, index: int) -> Any:
        """A locator for the notebook's cell number ``index`` (all kinds counted)."""
        return self.page.locator(CELL_SELECTOR).nth(index)

    def _raise_on_error(self, cells: list[dict[str, Any]]) -> None:
        failed = [i for i, cell in enumerate(cells) if cell["error"]]
        if failed:
            text = "\n---\n".join(f"cell {i}: {cells[i]['text'][-1500:]}" for i in failed)
            raise fail("cell-error", f"a notebook cell failed:\n{text}", cell=failed[0])

    def _dismiss_dialogs(self) -> None:
        """Accept the kernel choice if JupyterLab asks; fail on any other dialog."""
        dialogs = self.page.locator(".jp-Dialog")
        if dialogs.count() == 0:
            return
        text = dialogs.first.inner_text()
        if "Select Kernel" in text:
            dialogs.first.locator(".jp-Dialog-button.jp-mod-accept").click()
            return
        raise fail("dialog", f"JupyterLab shows a dialog the test does not expect:\n{text}")

    # -- doing
    def open_notebook(self, relative: str, n_cells: int) -> None:
        """Open the notebook and wait for its cells and an idle kernel."""
        self.stage = "open-notebook"
        self.page.goto(self.server.lab_url(relative), timeout=self.timeout * 1000)

        def ready() -> bool:
            self._dismiss_dialogs()
            if len(self.cells()) != n_cells:
                return False
            sessions = self.server.api("sessions")
            return any(
                s.get("path", "").endswith(relative)
                and (s.get("kernel") or {}).get("execution_state") == "idle"
                for s in sessions
            )

        wait_until(
            ready,
            self.timeout,
            lambda: fail(
                "notebook-not-ready",
                f"the notebook did not show its {n_cells} cells with an idle kernel within "
                f"{self.timeout:.0f} s (cells seen: {len(self.cells())}, sessions: "
                f"{self.server.api('sessions')})",
            ),
        )

    def run_menu(self, label: str) -> None:
        """Click Run in the menu bar, then the item ``label``."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        item = self.page.locator(
            ".lm-Menu .lm-Menu-item",
            has=self.page.locator(
                ".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(label)}$")
            ),
        )
        item.click()

    def wait_for_run(self, code_cells: list[int], after: int) -> list[dict[str, Any]]:
        """Wait until each of ``code_cells`` shows an execution count above ``after``.

        Raises:
            BrowserTestError: If a cell fails (with its traceback) or time runs out.
        """

        def done() -> list[dict[str, Any]] | None:
            self._dismiss_dialogs()
            cells = self.cells()
            self._raise_on_error(cells)
            if any(cells[i]["prompt"] == "[*]:" for i in code_cells):
                return None
            numbers = [prompt_number(cells[i]["prompt"]) for i in code_cells]
            if all(n is not None and n > after for n in numbers):
                return cells
            return None

        return wait_until(
            done,
            self.timeout,
            lambda: fail(
                "run-timeout",
                f"the cells {code_cells} did not all run within {self.timeout:.0f} s; "
                f"prompts: {[self.cells()[i]['prompt'] for i in code_cells]}",
            ),
        )

    def widget_state(self, index: int) -> dict[str, Any]:
        """What the BBoxWidget in cell ``index`` shows (image, overlay, boxes, text)."""
        handle = self.cell(index).element_handle()
        return dict(self.page.evaluate(_WIDGET_STATE_JS, handle))

    def wait_for_widget(self, index: int) -> dict[str, Any]:
        """Wait until the widget in cell ``index`` shows its image and drawing overlay.

        Raises:
            BrowserTestError: Naming what was shown instead (an error such as "model not
                found", a text repr when widgets are not rendered, or nothing).
        """

        ran_at: list[float] = []

        def rendered() -> dict[str, Any] | None:
            state = self.widget_state(index)
            if state["loaded"] and state["svg"]:
                return state
            cells = self.cells()
            self._raise_on_error(cells)
            # once its cell has run, the widget gets a grace period, not the whole timeout
            if prompt_number(cells[index]["prompt"]) is not None:
                ran_at.append(time.monotonic())
                if ran_at[-1] - ran_at[0] > min(WIDGET_GRACE, self.timeout):
                    raise why(f"within {WIDGET_GRACE:.0f} s after its cell ran")
            return None

        def why(when: str = "") -> BrowserTestError:
            state = self.widget_state(index)
            output = state["output"].strip()
            when = when or f"within {self.timeout:.0f} s"
            if not state["img"]:
                if "Error" in output or "not found" in output:
                    hint = "the widget failed to render"
                elif "BBoxWidget(" in output:
                    hint = "the widget manager did not render it (only its text repr shows)"
                elif not output:
                    hint = "the output is blank"
                else:
                    hint = "no widget image in the output"
                return fail(
                    "widget-not-rendered",
                    cell=index,
                    message=f"BBoxWidget did not render {when}: {hint}. Cell output: {output!r}",
                )
            return fail(
                "widget-image-not-loaded",
                cell=index,
                message=f"BBoxWidget's <img> did not load (or no drawing overlay) {when}: {state}",
            )

        return wait_until(rendered, self.timeout, why)

    def image_geometry(self, index: int) -> tuple[dict[str, float], float, float]:
        """The widget image's box on screen (CSS px) and its natural width and height."""
        img = self.cell(index).locator('img[alt="annotate me"]')
        img.scroll_into_view_if_needed()
        self.page.wait_for_timeout(300)  # let the notebook's scrolling settle
        box = img.bounding_box()
        natural = self.page.evaluate(
            "(img) => [img.naturalWidth, img.naturalHeight]", img.element_handle()
        )
        if box is None or box["width"] <= 0:
            raise fail("widget-invisible", "the widget image has no box on screen")
        return box, float(natural[0]), float(natural[1])

    def image_src(self, index: int) -> str:
        """The ``src`` of the widget's image (a data URL)."""
        img = self.cell(index).locator('img[alt="annotate me"]')
        return str(img.get_attribute("src"))

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Press the left button at ``start``, move to ``end`` in small steps, release."""
        mouse = self.page.mouse
        mouse.move(*start)
        mouse.down()
        self.page.wait_for_timeout(150)
        mouse.move(*end, steps=15)
        self.page.wait_for_timeout(150)
        mouse.up()

    def wait_for_drawn_box(self, index: int, rects_before: int) -> None:
        """Wait until the widget in cell ``index`` draws the new box over its image."""
        wait_until(
            lambda: self.widget_state(index)["rects"] > rects_before,
            min(WIDGET_GRACE, self.timeout),
            lambda: fail(
                "drag-drew-nothing",
                cell=index,
                message="the mouse drag drew no box on the widget's image "
                f"(widget state: {self.widget_state(index)})",
            ),
        )

    def select_cell(self, index: int) -> None:
        """Select cell ``index`` by clicking its prompt, as a person would."""
        prompt = self.cell(index).locator(".jp-InputArea-prompt")
        prompt.scroll_into_view_if_needed()
        prompt.click()


def _record_failure(
    error: BaseException, page: Any, stage: str, console: list[str] | None = None
) -> None:
    """Save the failure screenshot and note once, and point to them from the error."""
    if isinstance(error, (KeyboardInterrupt, GeneratorExit)) or getattr(error, "_saved", False):
        return
    reason = error.reason if isinstance(error, BrowserTestError) else stage
    cell = error.cell if isinstance(error, BrowserTestError) else None
    if page is not None and cell is not None:
        try:  # show the cell the failure is about
            page.locator(CELL_SELECTOR).nth(cell).scroll_into_view_if_needed(timeout=5_000)
        except Exception:  # the screenshot of whatever shows is still worth having
            pass
    shot = save_failure(page, reason, error)
    if console:
        with shot.with_suffix(".txt").open("a", encoding="utf-8") as fh:
            fh.write("\nbrowser console:\n" + "\n".join(console[-40:]) + "\n")
    error._saved = True  # type: ignore[attr-defined]
    if hasattr(error, "add_note"):
        where = f"screenshot {shot}, " if shot.exists() else ""
        error.add_note(f"browser test: {where}reason in {shot.with_suffix('.txt')}")


@contextmanager
def lab_page(
    root_dir: Path,
    home: Path,
    env: dict[str, str],
    timeout: float,
    viewport: tuple[int, int] = (1280, 1100),
    front_end: str = "lab",
) -> Iterator[LabPage]:
    """JupyterLab (or Notebook 7: ``front_end="notebook"``) served from ``root_dir``,
    open in headless Chromium.

    On any exception, ``build/browser-failure-<reason>.png`` (what the page showed) and
    a ``.txt`` beside it (the error) are written before the exception propagates; the
    reason is the ``BrowserTestError``'s, else the stage the test was at.

    Raises:
        BrowserTestError: If Chromium is missing (the test must fail, not skip).
    """
    if not CHROMIUM.exists():
        error = fail("chromium-missing", install_hint(CHROMIUM))
        _record_failure(error, None, "chromium-missing")
        raise error
    from playwright.sync_api import sync_playwright

    stage = "server-start"
    try:
        with (
            jupyterlab(root_dir, home, env, timeout, front_end) as server,
            sync_playwright() as playwright,
        ):
            stage = "browser-launch"
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                context = browser.new_context(
                    viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1
                )
                blocked: list[str] = []

                def block(route: Any) -> None:
                    blocked.append(route.request.url)
                    route.abort()

                # the page talks to 127.0.0.1 only (a notebook's badge or link stays offline)
                context.route(_NOT_LOCAL, block)
                page = context.new_page()
                page.set_default_timeout(timeout * 1000)
                lab = LabPage(server, page, timeout)
                try:
                    yield lab
                except BaseException as error:
                    blocked_note = [f"blocked (not 127.0.0.1): {url}" for url in blocked]
                    _record_failure(error, page, lab.stage, lab.console + blocked_note)
                    raise
            finally:
                stage = "shutdown"
                browser.close()
    except BaseException as error:
        _record_failure(error, None, stage)
        raise
