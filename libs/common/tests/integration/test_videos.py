"""common.videos on the real Postgres: a deleted video stays deleted, whichever event comes first."""

from __future__ import annotations

import uuid

import asyncpg

from common import videos

# the columns every service's read model has (captions and render add their own, with defaults)
TABLE = """
CREATE TABLE videos (
    video_id    uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    storage_key text NOT NULL,
    duration_s  double precision NOT NULL,
    deleted_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
)
"""


async def live(conn: asyncpg.Connection) -> list[uuid.UUID]:
    return [r["video_id"] for r in await conn.fetch("SELECT video_id FROM videos WHERE deleted_at IS NULL")]


async def test_a_delete_marks_a_known_video_and_remembers_an_unknown_one(pg_pool: asyncpg.Pool) -> None:
    owner, known, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with pg_pool.acquire() as conn:
        await conn.execute(TABLE)
        await conn.execute(
            "INSERT INTO videos (video_id, owner_id, storage_key, duration_s) VALUES ($1, $2, 'k', 3)",
            known,
            owner,
        )
        assert await live(conn) == [known]
        for _ in range(2):  # a redelivered delete changes nothing
            await videos.mark_video_deleted(conn, video_id=known, owner_id=owner)
            await videos.mark_video_deleted(conn, video_id=unknown, owner_id=owner)
        assert await live(conn) == []
        rows = await conn.fetch("SELECT video_id, storage_key FROM videos ORDER BY storage_key")
        assert {(r["video_id"], r["storage_key"]) for r in rows} == {(unknown, ""), (known, "k")}
