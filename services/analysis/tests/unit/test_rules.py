"""YouTube's chapter rules and the highlight rules: each violation is named, and repair keeps what is valid."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.models import Chapter, Highlight
from analysis.rules import (
    chapter_violations,
    highlight_violations,
    normalize,
    repair_chapters,
    repair_highlights,
    snap_chapters,
)

GOOD = [Chapter(0.0, "Intro"), Chapter(30.0, "Middle"), Chapter(60.0, "End")]


def test_good_chapters_have_no_violations() -> None:
    assert chapter_violations(GOOD, duration_s=90.0) == []


def test_each_rule_is_named() -> None:
    bad = [Chapter(5.0, "Late start"), Chapter(9.0, "x" * 50), Chapter(95.0, "After the end")]
    errors = " | ".join(chapter_violations(bad, duration_s=90.0))
    assert "first chapter must start at 0:00" in errors
    assert "at least 10 s" in errors
    assert "50 characters; at most 49" in errors
    assert "outside the video" in errors
    assert "at least 3" in chapter_violations(GOOD[:2], duration_s=90.0)[0]


def test_repair_keeps_the_valid_chapters_and_says_what_changed() -> None:
    chapters = [
        Chapter(4.0, "Intro"),
        Chapter(8.0, "Too close"),
        Chapter(40.0, "A title that is far too long to be shown by YouTube in full"),
        Chapter(70.0, "Third"),
        Chapter(85.0, "Near the end"),
        Chapter(200.0, "Outside"),
    ]
    kept, warnings = repair_chapters(chapters, duration_s=90.0)
    assert [c.start_s for c in kept] == [0.0, 40.0, 70.0]
    assert all(len(c.title) <= 49 for c in kept) and kept[1].title.endswith("…")
    assert chapter_violations(kept, duration_s=90.0) == []
    assert len(warnings) == 5


def test_repair_gives_no_chapters_rather_than_fewer_than_three() -> None:
    kept, warnings = repair_chapters(
        [Chapter(0.0, "A"), Chapter(5.0, "B"), Chapter(30.0, "C")], duration_s=60.0
    )
    assert kept == [] and "no chapters" in warnings[-1]


def test_chapters_snap_to_the_nearest_sentence_start() -> None:
    starts = [0.0, 12.5, 31.0, 40.0]
    snapped = snap_chapters(
        [Chapter(2.0, " A "), Chapter(33.9, "B"), Chapter(99.0, "C")], starts, duration_s=50.0
    )
    assert snapped == [Chapter(0.0, "A"), Chapter(31.0, "B"), Chapter(99.0, "C")]


def test_highlights_must_lie_inside_and_quote_the_transcript() -> None:
    spoken = normalize("Solar panels turn sunlight into electricity. The inverter converts the current.")
    good = Highlight(1.0, 5.0, "solar panels turn sunlight … the inverter", "core idea")
    outside = Highlight(80.0, 95.0, "Solar panels", "late")
    invented = Highlight(1.0, 5.0, "Wind turbines are better", "made up")
    assert highlight_violations([good], duration_s=60.0, transcript_text=spoken) == []
    errors = highlight_violations([outside, invented], duration_s=60.0, transcript_text=spoken)
    assert "inside the video" in errors[0] and "not in the transcript" in errors[1]
    kept, warnings = repair_highlights([good, outside, invented], duration_s=60.0, transcript_text=spoken)
    assert kept == [good] and warnings == ["dropped 2 highlights outside the video or not quoting it"]


chapter = st.builds(
    Chapter,
    st.floats(-20, 400, allow_nan=False),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=70),
)


@settings(max_examples=400, deadline=None)
@given(
    chapters=st.lists(chapter, max_size=12),
    starts=st.lists(st.floats(0, 400, allow_nan=False), min_size=1, max_size=40),
    duration=st.floats(1, 400, allow_nan=False),
)
def test_snapped_and_repaired_chapters_always_satisfy_the_rules(
    chapters: list[Chapter], starts: list[float], duration: float
) -> None:
    """Property: whatever a model answers, what is kept either satisfies every rule or is no chapters at all,
    and every kept chapter starts at 0:00 or at a sentence start."""
    sentence_starts = sorted({0.0, *starts})
    snapped = snap_chapters(chapters, sentence_starts, duration_s=duration)
    kept, warnings = repair_chapters(snapped, duration_s=duration)
    if kept:
        assert chapter_violations(kept, duration_s=duration) == []
        assert all(c.start_s in sentence_starts for c in kept)
    if chapter_violations(snapped, duration_s=duration):
        assert warnings
    else:
        assert kept == snapped
