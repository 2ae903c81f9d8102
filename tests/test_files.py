"""samkit.files: strict JSON out, clear errors in (encodings, deep nesting)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from samkit.files import decode_text, json_text, read_json


def _strict(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_json_text_writes_nan_and_infinity_as_null() -> None:
    content = {"score": math.nan, "area": 3, "boxes": [[1.0, math.inf], (-math.inf,)]}
    text = json_text(content)
    assert _strict(text) == {"score": None, "area": 3, "boxes": [[1.0, None], [None]]}
    assert json.dumps(content).count("NaN") == 1  # what json.dumps alone would write


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b'{"a": 1}', '{"a": 1}'),
        ('{"a": "\u00e9"}'.encode("utf-8-sig"), '{"a": "\u00e9"}'),
        ('{"a": "\u00e9"}'.encode("utf-16"), '{"a": "\u00e9"}'),  # Windows' "Unicode"
        ('{"a": "\u00e9"}'.encode("utf-16-be").join([b"\xfe\xff", b""]), '{"a": "\u00e9"}'),
        ('{"a": "\u00e9"}'.encode("utf-32"), '{"a": "\u00e9"}'),
    ],
)
def test_decode_text(data: bytes, text: str) -> None:
    assert decode_text(data, "f.json") == text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'{"a": "\xe9"}',
            r"f.json must be UTF-8 text \(or UTF-16/UTF-32 with a byte-order mark\), but byte "
            r"0xe9 at position 7 is not utf-8",
        ),
        (
            "{}".encode("utf-16-le"),
            r"but it holds NUL bytes \(UTF-16 without a byte-order mark, or not text\)",
        ),
    ],
)
def test_decode_text_refuses(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_text(data, "f.json")


def test_read_json_refuses_deep_nesting_clearly(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    message = (
        rf"{path} is nested too deeply to be read \(arrays or objects inside one another "
        r"about a thousand levels deep\): it is not a file samkit reads"
    )
    with pytest.raises(ValueError, match=message):
        read_json(path)


def test_read_json(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"a": [1, 2]}', encoding="utf-16")
    assert read_json(path) == {"a": [1, 2]}
    path.write_text("{")
    with pytest.raises(ValueError, match=rf"{path} is not a JSON file: Expecting"):
        read_json(path)
