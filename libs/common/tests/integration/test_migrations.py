"""The migrations runner against the real Postgres: ordered, recorded, locked, tamper-evident."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from common import db


@pytest.fixture
async def schema_name(database_url: str) -> AsyncIterator[str]:
    """A fresh schema name; the schema is dropped after the test."""
    name = f"mig_{uuid.uuid4().hex[:10]}"
    yield name
    await db.drop_schema(database_url, name)


async def test_applies_in_order_once_and_records(database_url: str, schema_name: str, tmp_path: Path) -> None:
    (tmp_path / "0002_more.sql").write_text("ALTER TABLE things ADD COLUMN size int NOT NULL DEFAULT 0;")
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE things (id int PRIMARY KEY, name text);")
    first = await db.migrate(database_url, schema=schema_name, directories=[tmp_path])
    assert first == [
        "common/0001_outbox_inbox_jobs.sql",
        "common/0002_job_runs.sql",
        "common/0003_credit_holds.sql",
        "common/0004_job_subject.sql",
        "common/0005_idempotency_keys.sql",
        "0001_init.sql",
        "0002_more.sql",
    ]
    assert await db.migrate(database_url, schema=schema_name, directories=[tmp_path]) == []
    pool = await db.create_pool(database_url, schema=schema_name)
    try:
        async with pool.acquire() as conn:
            await conn.execute("INSERT INTO things (id, name) VALUES (1, 'a')")  # search_path = the schema
            assert await conn.fetchval("SELECT size FROM things WHERE id = 1") == 0
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(first)
            assert await conn.fetchval("SELECT current_schema()") == schema_name
    finally:
        await pool.close()


async def test_concurrent_runs_apply_each_file_exactly_once(
    database_url: str, schema_name: str, tmp_path: Path
) -> None:
    # a non-idempotent migration would fail on a second application
    (tmp_path / "0001_init.sql").write_text("CREATE TABLE once (id int); SELECT pg_sleep(0.2);")
    results = await asyncio.gather(
        *(db.migrate(database_url, schema=schema_name, directories=[tmp_path]) for _ in range(4))
    )
    applied = [v for r in results for v in r]
    assert applied.count("0001_init.sql") == 1


async def test_changed_migration_is_refused(database_url: str, schema_name: str, tmp_path: Path) -> None:
    f = tmp_path / "0001_init.sql"
    f.write_text("CREATE TABLE t (id int);")
    await db.migrate(database_url, schema=schema_name, directories=[tmp_path])
    f.write_text("CREATE TABLE t (id bigint);")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        await db.migrate(database_url, schema=schema_name, directories=[tmp_path])


async def test_failed_migration_rolls_back_and_is_not_recorded(
    database_url: str, schema_name: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_bad.sql").write_text("CREATE TABLE half (id int); SELECT * FROM no_such_table;")
    with pytest.raises(asyncpg.UndefinedTableError):
        await db.migrate(database_url, schema=schema_name, directories=[tmp_path])
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass($1)", f"{schema_name}.half") is None
        assert (
            await conn.fetchval(
                f"SELECT count(*) FROM {schema_name}.schema_migrations WHERE version = '0001_bad.sql'"
            )
            == 0
        )
    finally:
        await conn.close()


def test_unsafe_schema_names_are_refused() -> None:
    for bad in ["a;drop", "A", "1abc", "x" * 70, "a-b"]:
        with pytest.raises(ValueError):
            db.check_ident(bad)
