"""The lock file: one holder at a time, the others wait and are told once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from samkit.locks import locked


def test_a_second_holder_waits_until_the_first_lets_go(tmp_path: Path) -> None:
    lock = tmp_path / "job.lock"
    events: list[str] = []

    def second() -> None:
        with locked(lock, on_wait=lambda: events.append("waiting")):
            events.append("second holds it")

    with locked(lock):
        thread = threading.Thread(target=second)
        thread.start()
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # long enough for a lock that does not hold to be taken
        assert events == ["waiting"]
        events.append("first lets go")
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert events == ["waiting", "first lets go", "second holds it"]
    assert not lock.exists()


def test_no_wait_no_message_and_the_file_is_gone_after_an_error(tmp_path: Path) -> None:
    lock = tmp_path / "job.lock"
    said: list[int] = []
    with pytest.raises(RuntimeError, match="inside"), locked(lock, on_wait=lambda: said.append(1)):
        assert lock.exists()
        raise RuntimeError("inside")
    assert said == [] and not lock.exists()
    with locked(lock):  # taken again at once
        pass


def test_a_missing_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), locked(tmp_path / "missing" / "job.lock"):
        pass
