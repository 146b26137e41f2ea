"""Database fixtures: a fresh, migrated schema per test, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from .. import db
from .netproxy import TcpProxy

__all__ = ["database_url", "db_proxy", "fresh_schema", "make_schema", "pg_pool"]

SchemaFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def database_url() -> str:
    """The Postgres DSN tests use (``DATABASE_URL`` or the local server)."""
    return os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
async def make_schema(database_url: str) -> AsyncIterator[SchemaFactory]:
    """A factory: ``await make_schema("billing", migrations_dir)`` → a unique migrated schema, dropped at teardown."""
    created: list[str] = []

    async def factory(prefix: str = "t", migrations_dir: Path | None = None) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        await db.migrate(database_url, schema=name, directories=[migrations_dir] if migrations_dir else [])
        created.append(name)
        return name

    yield factory
    for name in created:
        await db.drop_schema(database_url, name)


@pytest.fixture
async def fresh_schema(make_schema: SchemaFactory) -> str:
    """A unique schema with only the common tables (outbox, inbox, jobs, job_runs)."""
    return await make_schema("t")


@pytest.fixture
async def pg_pool(database_url: str, fresh_schema: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool bound to ``fresh_schema``."""
    pool = await db.create_pool(database_url, schema=fresh_schema, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def db_proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    """A TCP proxy in front of Postgres; connect with ``db_proxy.url_via(database_url)``."""
    async with TcpProxy.in_front_of(database_url, default_port=5432) as proxy:
        yield proxy
