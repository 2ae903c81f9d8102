from __future__ import annotations

import re
import time

import pytest

import samkit

# ------------------------------------------------------------------ stopwatch


def test_stopwatch_prints_milliseconds(capsys: pytest.CaptureFixture[str]) -> None:
    with samkit.stopwatch("nap") as timing:
        time.sleep(0.02)
    assert timing.milliseconds >= 20
    printed = capsys.readouterr().out
    assert re.fullmatch(r"nap: \d+\.\d ms\n", printed)
    assert printed == f"{timing}\n"


def test_stopwatch_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    with samkit.stopwatch("", echo=False) as timing:
        pass
    assert timing.milliseconds >= 0
    assert capsys.readouterr().out == ""


def test_stopwatch_rejects_a_non_string_label() -> None:
    with pytest.raises(ValueError, match="label must be a string, but got int"):
        with samkit.stopwatch(5):  # type: ignore[arg-type]
            pass
