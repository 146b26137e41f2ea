"""One answer for a bad page request; coded errors render as problems without internal paths."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from common.errors import CodedError, NotFound, public_message
from common.http import Problem, problem_body
from common.pagination import PageRequest, Paging, decode_cursor, encode_cursor, page_of, parse_limit

PAGING = Paging(default=20, maximum=100)


@pytest.mark.parametrize("raw", ["0", "-1", "101", "x", "1.5", " ", "1e3"])
def test_a_bad_limit_is_one_answer(raw: str) -> None:
    with pytest.raises(CodedError) as err:
        parse_limit(raw, PAGING)
    assert (err.value.status, err.value.code, err.value.extra) == (
        422,
        "validation.invalid",
        {"field": "limit"},
    )


def test_limit_defaults_and_bounds() -> None:
    assert parse_limit(None, PAGING) == 20
    assert parse_limit("", PAGING) == 20
    assert parse_limit("1", PAGING) == 1 and parse_limit("100", PAGING) == 100


def test_a_cursor_round_trips_its_keyset_position_and_a_foreign_one_is_refused() -> None:
    key = (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), uuid.uuid4())
    assert decode_cursor(encode_cursor(key), tuple[datetime, uuid.UUID]) == key
    for bad in ("%%%", "e30", encode_cursor([1, 2]), "A" * 600):
        with pytest.raises(CodedError) as err:
            decode_cursor(bad, tuple[datetime, uuid.UUID])
        assert (err.value.status, err.value.code, err.value.extra["field"]) == (
            422,
            "validation.invalid",
            "cursor",
        )


def test_page_of_shows_limit_rows_and_a_cursor_only_when_there_are_more() -> None:
    rows = [5, 4, 3]
    page = page_of(rows, PageRequest(limit=2, after=None), key=lambda r: r, view=str)
    assert page.items == ["5", "4"] and page.next_cursor == encode_cursor(4)
    last = page_of(rows[:2], PageRequest(limit=2, after=None), key=lambda r: r, view=str)
    assert last.next_cursor is None


def test_not_found_has_one_shape() -> None:
    err = NotFound("video")
    assert (err.status, err.code, err.message) == (404, "video.not_found", "no such video")


def test_problem_is_a_coded_error_and_renders_rfc_9457() -> None:
    err = Problem(409, "thing.exists", "it exists", field="name")
    assert isinstance(err, CodedError)
    body = problem_body(err, "rid")
    assert body == {
        "type": "https://reelforge.dev/problems/thing.exists",
        "title": "Conflict",
        "status": 409,
        "code": "thing.exists",
        "detail": "it exists",
        "request_id": "rid",
        "field": "name",
    }


def test_internal_paths_never_reach_a_user() -> None:
    text = "[Errno 1] Operation not permitted: '/tmp/pytest-1/transcode/ab12/audio/index.m3u8'"
    assert public_message(text) == "Operation not permitted"
    body = problem_body(CodedError("media.unreadable", text))
    assert "/tmp" not in body["detail"]
    # URLs and ordinary words with slashes are left alone
    assert (
        public_message("see https://example.com/a/b and and/or") == "see https://example.com/a/b and and/or"
    )


def test_library_words_never_reach_a_user() -> None:
    assert public_message("not a readable video file (InvalidDataError)") == "not a readable video file"
    ytdlp = (
        "ERROR: [generic] oops; please report this issue on  https://github.com/yt-dlp/yt-dlp/issues?q= ,"
        " filling out the appropriate issue template. Confirm you are on the latest version using  yt-dlp -U"
    )
    assert public_message(ytdlp) == "ERROR: [generic] oops"
    assert (
        public_message("the clip cannot be opened (unknown format)")
        == "the clip cannot be opened (unknown format)"
    )
