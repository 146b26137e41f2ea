"""Cues built to each language's profile, and the style check that judges them."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from captions.cues import RUN_PAUSE_MS, Cue, build_cues, layout_text, reflow
from captions.profiles import DEFAULT, ENGLISH, KOREAN, profile_for
from captions.quality import Rule, check, summary
from captions.transcript import Word

from ..conftest import speak

SCRIPT = (
    "Good morning, and welcome to the weekly news from our small town. The library will open a new reading room "
    "next month. Children can borrow books, play games, and meet their friends after school. The bakery on the "
    "main street is looking for a new cook."
)


def end_ms(words: list[Word], tail_s: float = 2.0) -> int:
    return round((words[-1].end + tail_s) * 1000)


def test_english_cues_meet_every_rule() -> None:
    words = speak(SCRIPT)
    cues = build_cues(words, ENGLISH, media_end_ms=end_ms(words))
    assert check(cues, ENGLISH, media_end_ms=end_ms(words)) == []
    assert " ".join(c.text for c in cues) == SCRIPT
    assert [c.id for c in cues] == [f"c{n}" for n in range(1, len(cues) + 1)]
    assert all(len(line) <= 42 for c in cues for line in c.lines)


def test_cue_ids_and_times_are_stable() -> None:
    words = speak(SCRIPT)
    assert build_cues(words, ENGLISH, media_end_ms=end_ms(words)) == build_cues(
        words, ENGLISH, media_end_ms=end_ms(words)
    )


def test_lines_break_at_punctuation_and_never_after_an_article() -> None:
    text = "She put the old leather suitcase, which was heavy, on the table."
    lines = layout_text(text, ENGLISH)
    assert len(lines) == 2
    assert lines[0].endswith(",")
    assert not any(line.split()[-1].lower() in {"a", "an", "the"} for line in lines)


def test_a_long_pause_ends_the_cue_and_nothing_is_shown_inside_it() -> None:
    words = speak("The first part ends here and then there is silence", pause_after={9: 6.0})
    words += speak("and the second part starts after it.", start=words[-1].end + 6.0)
    cues = build_cues(words, ENGLISH, media_end_ms=end_ms(words))
    silence = (round(words[9].end * 1000) + 1000, round(words[10].start * 1000) - 100)
    assert all(c.end_ms <= silence[0] or c.start_ms >= silence[1] for c in cues)
    assert check(cues, ENGLISH, media_end_ms=end_ms(words)) == []


def test_gaps_are_two_frames_at_the_video_rate_and_short_gaps_are_closed() -> None:
    words = speak(SCRIPT, cps=16)
    for fps, gap in ((25.0, 80), (24000 / 1001, 84), (60.0, 34)):
        cues = build_cues(words, ENGLISH, media_end_ms=end_ms(words), fps=fps)
        gaps = [b.start_ms - a.end_ms for a, b in itertools.pairwise(cues)]
        assert min(gaps) >= gap
        assert gap in gaps  # a gap shorter than 12 frames is closed to exactly the minimum
        assert check(cues, ENGLISH, media_end_ms=end_ms(words), fps=fps) == []


def test_the_last_cue_ends_inside_the_media() -> None:
    words = speak("Short clip.")
    media_end = round(words[-1].end * 1000) + 200
    cues = build_cues(words, ENGLISH, media_end_ms=media_end)
    assert cues[-1].end_ms <= media_end
    assert cues[-1].end_ms - cues[-1].start_ms >= ENGLISH.min_duration_ms


def test_korean_profile_counts_latin_spaces_and_punctuation_as_half() -> None:
    assert KOREAN.width("안녕하세요") == 5
    assert KOREAN.width("TV 보기.") == 1 + 0.5 + 2 + 0.5
    assert profile_for("ko-KR") is KOREAN and profile_for("en-US") is ENGLISH and profile_for("fr") is DEFAULT
    words = speak(
        "오늘 아침 우리 마을의 주간 소식을 전해 드립니다. 도서관은 다음 달에 새 열람실을 엽니다. "
        "아이들은 방과 후에 책을 빌리고 친구를 만날 수 있습니다.",
        cps=7,
    )
    cues = build_cues(words, KOREAN, media_end_ms=end_ms(words))
    assert check(cues, KOREAN, media_end_ms=end_ms(words)) == []
    assert all(KOREAN.width(line) <= 16 for c in cues for line in c.lines)
    assert all(KOREAN.width(c.text) / ((c.end_ms - c.start_ms) / 1000) <= 12 for c in cues)


def test_the_checker_names_each_broken_rule() -> None:
    def cue(cue_id: str, start: int, end: int, *lines: str) -> Cue:
        return Cue(id=cue_id, start_ms=start, end_ms=end, lines=lines)

    cases = {
        Rule.EMPTY: [cue("a", 0, 2000, " ")],
        Rule.LINE_COUNT: [cue("a", 0, 6000, "one", "two", "three")],
        Rule.LINE_LENGTH: [cue("a", 0, 6000, "x" * 43)],
        Rule.READING_SPEED: [cue("a", 0, 1000, "twenty-one characters")],
        Rule.MIN_DURATION: [cue("a", 0, 833, "Hi.")],
        Rule.MAX_DURATION: [cue("a", 0, 7001, "Long.")],
        Rule.GAP: [cue("a", 0, 1000, "One."), cue("b", 1079, 2000, "Two.")],
        Rule.OVERLAP: [cue("a", 0, 1000, "One."), cue("b", 999, 2000, "Two.")],
        Rule.LINE_BREAK: [cue("a", 0, 3000, "He bought a", "new car.")],
        Rule.BOUNDS: [cue("a", 8000, 10001, "Past the end.")],
        Rule.DUPLICATE_ID: [cue("a", 0, 1000, "One."), cue("a", 2000, 3000, "Two.")],
    }
    for rule, cues in cases.items():
        found = {v.rule for v in check(cues, ENGLISH, media_end_ms=10_000)}
        assert found == {rule}, (rule, found)
    assert summary(check(cases[Rule.GAP], ENGLISH)) == {r.value: int(r is Rule.GAP) for r in Rule}
    assert check([cue("a", 0, 1000, "One."), cue("b", 1080, 2000, "Two.")], ENGLISH) == []


def test_reflow_keeps_ids_and_times_when_the_translation_fits() -> None:
    words = speak(SCRIPT)
    cues = build_cues(words, ENGLISH, media_end_ms=end_ms(words))
    texts = {c.id: c.text[::-1] for c in cues}
    out = reflow(cues, texts, ENGLISH, media_end_ms=end_ms(words))
    assert [c.id for c in out] == [c.id for c in cues]
    assert [c.start_ms for c in out] == [c.start_ms for c in cues]
    assert check(out, ENGLISH, media_end_ms=end_ms(words)) == []


def test_reflow_resplits_a_sentence_whose_translation_is_too_long_for_its_cues() -> None:
    words = speak(
        "The bakery on the main street is looking for a new cook who likes to work early in the morning."
    )
    cues = build_cues(words, ENGLISH, media_end_ms=end_ms(words, 6.0))
    texts = {c.id: "맛있는 빵을 굽는 우리 동네 빵집이 새벽에 일할 새 요리사를 찾고 있습니다" for c in cues}
    out = reflow(cues, texts, KOREAN, media_end_ms=end_ms(words, 6.0))
    assert check(out, KOREAN, media_end_ms=end_ms(words, 6.0)) == []
    assert len(out) > len(cues)
    assert [c.id for c in out][: len(cues)] == [c.id for c in cues]
    assert all(c.id.startswith(cues[-1].id + ".") for c in out[len(cues) :])
    assert out[0].start_ms == cues[0].start_ms


def test_reflow_merges_cues_of_one_sentence_when_reading_speed_demands() -> None:
    words = speak("When the rain stops, we will walk to the river and look for the boats.", cps=15)
    cues = build_cues(words, ENGLISH, media_end_ms=end_ms(words))
    split = [
        Cue(
            id="a", start_ms=cues[0].start_ms, end_ms=cues[0].start_ms + 1500, lines=("When the rain stops,",)
        ),
        Cue(
            id="b",
            start_ms=cues[0].start_ms + 1580,
            end_ms=cues[-1].end_ms,
            lines=("we will walk to the river.",),
        ),
    ]
    texts = {"a": "Quand la pluie cessera enfin, nous,", "b": "irons au fleuve."}
    out = reflow(split, texts, DEFAULT, media_end_ms=end_ms(words))
    assert check(out, DEFAULT, media_end_ms=end_ms(words)) == []
    assert [c.id for c in out] == ["a"]
    assert out[0].text == "Quand la pluie cessera enfin, nous, irons au fleuve."


PHRASES = [
    "the house",
    "a river",
    "an old bridge",
    "walked quickly",
    "and",
    "of the town,",
    "to",
    "beautiful",
    "at last.",
    "extraordinarily",
    "they said",
]


@settings(max_examples=60, deadline=None)
@given(
    phrases=st.lists(st.sampled_from(PHRASES), min_size=1, max_size=60),
    cps=st.floats(min_value=8, max_value=18),
    pauses=st.dictionaries(st.integers(0, 59), st.floats(0.0, 4.0), max_size=6),
    fps=st.sampled_from([24000 / 1001, 25.0, 30.0, 50.0]),
)
def test_any_speech_at_a_readable_pace_gives_cues_without_violations(
    phrases: list[str], cps: float, pauses: dict[int, float], fps: float
) -> None:
    words: list[Word] = []
    for k, phrase in enumerate(phrases):  # a speaker pauses between phrases, never inside one
        words += speak(phrase, start=words[-1].end + 0.05 + pauses.get(k, 0.0) if words else 0.0, cps=cps)
    media_end = end_ms(words, 1.0)
    cues = build_cues(words, ENGLISH, media_end_ms=media_end, fps=fps)
    assert check(cues, ENGLISH, media_end_ms=media_end, fps=fps) == []
    assert [w for c in cues for w in c.words] == words
    for c in cues:  # no cue spans a long pause
        assert all(b.start - a.end < RUN_PAUSE_MS / 1000 for a, b in zip(c.words, c.words[1:], strict=False))
