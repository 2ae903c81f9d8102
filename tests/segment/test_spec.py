"""What a run reports."""

from __future__ import annotations

from pathlib import Path

from samkit.segment.spec import Failure, SegmentSummary


def test_summary_text() -> None:
    summary = SegmentSummary(
        done=3,
        skipped=1,
        failed=[Failure("a.txt", "cannot read")],
        annotations_file=Path("o/annotations.json"),
        images=4,
        annotations=9,
        seconds=1.5,
        no_masks=["gray.png"],
    )
    assert str(summary).splitlines() == [
        "done 3, skipped 1, failed 1",
        "  failed: a.txt: cannot read",
        "  no masks: gray.png (nothing passed the filters; a blank image gives none)",
        "4 images, 9 masks -> o/annotations.json",
        "2.00 images/s (1.5 s, local engine)",
    ]
    assert not summary.ok


def test_summary_of_a_run_with_nothing_to_do() -> None:
    summary = SegmentSummary(skipped=2, engine="ray")
    assert str(summary) == "done 0, skipped 2, failed 0"  # no file yet, no rate without work
    assert summary.ok
    assert SegmentSummary().failed is not SegmentSummary().failed  # never a shared list
