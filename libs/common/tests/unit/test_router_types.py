"""mypy checks a router's handlers against the event class they are registered for."""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api

SNIPPET = textwrap.dedent(
    """
    import asyncpg
    from common.bus import Delivery, Router
    from common.events.captions import CaptionsCompleted
    from common.events.ingest import VideoIngested

    router = Router(consumer="x")

    @router.on(VideoIngested)
    async def tx_ok(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None: ...

    @router.on(VideoIngested, inbox=False)
    async def plain_ok(event: VideoIngested, delivery: Delivery) -> None: ...

    @router.on(VideoIngested)  # ERROR: another event's handler
    async def wrong_event(conn: asyncpg.Connection, event: CaptionsCompleted, delivery: Delivery) -> None: ...

    @router.on(VideoIngested, inbox=False)  # ERROR: a transactional handler declared plain
    async def wrong_shape(conn: asyncpg.Connection, event: VideoIngested, delivery: Delivery) -> None: ...

    @router.on(VideoIngested)  # ERROR: a plain handler declared transactional
    async def missing_conn(event: VideoIngested, delivery: Delivery) -> None: ...

    router.add(VideoIngested, tx_ok)
    router.add(CaptionsCompleted, tx_ok)  # ERROR
    router.add(VideoIngested, plain_ok, inbox=False)
    router.add(CaptionsCompleted, plain_ok, inbox=False)  # ERROR
    """
)


#: kept between runs like the media samples (a cold run analyses common and its dependencies: seconds)
CACHE = Path("var/cache/mypy-router-types").resolve()


def test_a_handler_for_another_event_type_or_shape_is_a_type_error(tmp_path: Path) -> None:
    source = tmp_path / "handlers.py"
    source.write_text(SNIPPET)
    out, err, _ = api.run(["--strict", "--ignore-missing-imports", "--cache-dir", str(CACHE), str(source)])
    reported = sorted({int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line})
    expected = [n for n, line in enumerate(SNIPPET.splitlines(), start=1) if "# ERROR" in line]
    assert len(expected) == 5
    assert reported == expected, out + err
