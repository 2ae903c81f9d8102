"""A real HTTP server on 127.0.0.1 for the download tests: no network beyond this host.

Each served file has a mode that imitates what goes wrong out there:

- ``"ok"``: the file, with Range support (206 + Content-Range, 416 past the end);
- ``"no-range"``: the whole file every time (a server that ignores Range);
- ``"404"`` / ``"500"``: an HTTP error;
- ``"html"``: an HTML error page with ``Content-Type: text/html``;
- ``"html-as-binary"``: an HTML page sent as ``application/octet-stream``;
- ``"truncate"``: announces the full length, sends half of it, closes the connection;
- ``"slow"``: sends the headers, then waits ``delay_s`` before the body;
- ``"stall"``: sends half the body, waits ``delay_s``, then sends the rest;
- ``"json"``: a JSON error body with ``Content-Type: application/json``;
- ``"trickle"``: the file, one byte every ``delay_s`` seconds (never slow enough for a
  read timeout, too slow ever to finish).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


def payload(size: int, seed: int = 0) -> bytes:
    """``size`` pseudo-random bytes, the same for the same seed (a stand-in checkpoint)."""
    return random.Random(seed).randbytes(size)


HTML_PAGE = b"<!DOCTYPE html>\n<html><body><h1>Sign in to continue</h1></body></html>\n"

JSON_ERROR = b'{"error": {"code": 403, "message": "Access denied"}}\n'


@dataclass
class Hit:
    """One request the server received."""

    path: str
    range: str | None


@dataclass
class Served:
    """A file the server serves, and how."""

    data: bytes
    mode: str = "ok"
    delay_s: float = 0.0


@dataclass
class _State:
    files: dict[str, Served] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    state: _State  # set on the subclass made per server

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""

    def do_GET(self) -> None:
        with self.state.lock:
            self.state.hits.append(Hit(self.path, self.headers.get("Range")))
            served = self.state.files.get(self.path)
        if served is None or served.mode == "404":
            self.send_error(404)
            return
        if served.mode == "500":
            self.send_error(500)
            return
        if served.mode == "json":
            self._send(200, JSON_ERROR, "application/json")
            return
        if served.mode in ("html", "html-as-binary"):
            kind = (
                "text/html; charset=utf-8" if served.mode == "html" else "application/octet-stream"
            )
            self._send(200, HTML_PAGE, kind)
            return
        data = served.data
        start = self._range_start()
        if start is not None and served.mode != "no-range":
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
            self._send(206, data[start:], "application/octet-stream", extra)
            return
        if served.mode == "truncate":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if served.mode == "stall":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self._write(data[: len(data) // 2])
            self.wfile.flush()
            time.sleep(served.delay_s)
            self._write(data[len(data) // 2 :])
            return
        if served.mode == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(len(data)):
                try:
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up
                time.sleep(served.delay_s)
            return
        if served.mode == "slow":
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.flush()
            time.sleep(served.delay_s)
            self._write(data)
            return
        self._send(200, data, "application/octet-stream")

    def _range_start(self) -> int | None:
        header = self.headers.get("Range")
        if not header or not header.startswith("bytes=") or not header.endswith("-"):
            return None
        return int(header[len("bytes=") : -1])

    def _send(
        self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self._write(body)

    def _write(self, body: bytes) -> None:
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The client gave up (a timeout test): nothing to do.


class LocalServer:
    """A threaded HTTP server on a free port of 127.0.0.1, used as a context manager."""

    def __init__(self) -> None:
        self._state = _State()
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        # a short poll, so that leaving the context does not wait half a second
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def hits(self) -> list[Hit]:
        """The requests received so far."""
        with self._state.lock:
            return list(self._state.hits)

    def serve(self, path: str, data: bytes, mode: str = "ok", delay_s: float = 0.0) -> str:
        """Serve ``data`` at ``path`` (starting with ``/``); return its full URL."""
        with self._state.lock:
            self._state.files[path] = Served(data, mode, delay_s)
        return self.url + path

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (a free port, closed again)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
