"""Database fixtures: a fresh, migrated schema per test, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncpg
import pytest

from .. import db
from ..settings import ServiceSettings
from .netproxy import TcpProxy

__all__ = [
    "database_url",
    "db_proxy",
    "fresh_schema",
    "isolated_settings",
    "make_schema",
    "make_settings",
    "pg_pool",
]

SchemaFactory = Callable[..., Awaitable[str]]
S = TypeVar("S", bound=ServiceSettings)


def database_dsn() -> str:
    """The Postgres DSN tests use (``DATABASE_URL`` or the local server)."""
    return os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def isolated_settings(settings: type[S], schema: str, **fields: Any) -> S:
    """``settings`` for one test: the test database, its own ``schema`` and bus queue (``<service>-<random>``),
    console logs; then ``fields``."""
    queue = f"{settings.service}-{uuid.uuid4().hex[:12]}"
    isolated = {
        "database_url": database_dsn(),
        "db_schema": schema,
        "bus_queue": queue,
        "log_format": "console",
        # tests run beside each other and the e2e stack on one Postgres (100 connections by default)
        "db_pool_max": 4,
        "db_pool_idle_s": 5.0,
    }
    return settings(**{**isolated, **fields})


@pytest.fixture(scope="session")
def database_url() -> str:
    """The Postgres DSN tests use (``DATABASE_URL`` or the local server)."""
    return database_dsn()


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


class SettingsFactory(Protocol):
    """``await make_settings(BillingSettings, migrations_dir, **fields)``: see ``make_settings``."""

    async def __call__(self, settings: type[S], migrations_dir: Path, /, **fields: Any) -> S: ...


@pytest.fixture
def make_settings(make_schema: SchemaFactory) -> SettingsFactory:
    """A factory: ``await make_settings(BillingSettings, migrations_dir, **fields)`` → the service's settings on a
    fresh schema migrated with ``migrations_dir`` (dropped at teardown), its own bus queue; then ``fields``."""

    async def factory(settings: type[S], migrations_dir: Path, /, **fields: Any) -> S:
        return isolated_settings(settings, await make_schema(settings.service, migrations_dir), **fields)

    return factory


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
