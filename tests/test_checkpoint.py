"""samkit.checkpoint on its own; load_sam's use of it is tested in test_model.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from samkit import checkpoint, registry


def test_a_state_dict_is_read_and_unwrapped(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"model": {"a": torch.ones(2)}}, path)
    assert list(checkpoint.read_state_dict(path)) == ["a"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"<html><body>403</body></html>", "is an HTML page (an error or login page"),
        (b'{"error": "denied"}', "is a JSON file, not a checkpoint"),
        (b"\x1f\x8b\x08\x00rest", "is a gzip file, not a checkpoint"),
        (b"", "is an empty file (0 bytes), not a checkpoint: if it was downloaded, the download"),
    ],
)
def test_what_is_no_checkpoint_is_named(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "w.pth"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"checkpoint {path} {says}")) as info:
        checkpoint.read_state_dict(path)
    assert str(info.value).endswith(checkpoint.REDOWNLOAD)


def test_checkpoint_model_type_matches_the_shapes_architecture() -> None:
    torch.manual_seed(0)
    state = registry.build_shapes_sam().state_dict()
    assert checkpoint.checkpoint_model_type(state) == "shapes"
    state.pop(next(iter(state)))
    assert checkpoint.checkpoint_model_type(state) is None
    assert checkpoint.describe_shapes({}) == "0 tensors, without SAM's image encoder"
