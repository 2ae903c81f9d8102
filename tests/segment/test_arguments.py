"""The arguments of a segment job, checked before anything is loaded or written."""

from __future__ import annotations

import pytest

from samkit.segment.arguments import check_flag, choose_model
from samkit.segment.spec import SegmentUsageError


@pytest.mark.parametrize(
    ("value", "ok"),
    [(True, True), (False, True), (1, False), ("true", False), (None, False)],
)
def test_check_flag(value: object, ok: bool) -> None:
    if ok:
        assert check_flag("png", value) is value
    else:
        with pytest.raises(SegmentUsageError, match=r"png must be True or False, but got"):
            check_flag("png", value)


def test_text_prompts_choose_sam3_and_no_generator_settings() -> None:
    assert choose_model(None, None, None, {}, False, ("gato",)) == ("sam3", {})


def test_generator_settings_with_boxes_are_refused() -> None:
    with pytest.raises(SegmentUsageError, match="generator settings apply to automatic masks"):
        choose_model("shapes", None, "boxes.json", {"points_per_side": 4})
