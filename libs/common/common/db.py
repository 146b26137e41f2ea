"""asyncpg pools bound to one service's schema, and the SQL migrations runner."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
import msgspec

from .logging import get_logger

if TYPE_CHECKING:
    from .settings import ServiceSettings

log = get_logger(__name__)

T = TypeVar("T")

COMMON_MIGRATIONS = Path(__file__).parent / "sql"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_ident(name: str) -> str:
    """Refuse anything but a plain lower-case SQL identifier (schema names are interpolated)."""
    if not _IDENT.match(name):
        raise ValueError(f"not a safe SQL identifier: {name!r}")
    return name


async def _init_conn(conn: asyncpg.Connection) -> None:
    import json

    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    dsn: str,
    *,
    schema: str,
    min_size: int = 1,
    max_size: int = 10,
    connect_timeout_s: float = 10.0,
    idle_s: float = 300.0,
) -> asyncpg.Pool:
    """A pool whose connections see only ``schema`` (then ``public``) by default; jsonb decodes to Python.

    A new connection that cannot be made within ``connect_timeout_s`` fails (asyncpg's default waits 60 s); one
    left unused for ``idle_s`` is closed (down to ``min_size``)."""
    check_ident(schema)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=connect_timeout_s,
        max_inactive_connection_lifetime=idle_s,
        server_settings={"search_path": f"{schema},public", "application_name": f"reelforge-{schema}"},
        init=_init_conn,
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def settings_pool(settings: ServiceSettings, *, max_size: int = 2) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on ``settings``' database and schema for one command or test, closed on exit."""
    pool = await create_pool(settings.database_url, schema=settings.schema, min_size=1, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()


async def close_pool(pool: asyncpg.Pool, *, timeout_s: float = 10.0) -> None:
    """Close gracefully, but never hang a shutdown: a connection still held after ``timeout_s`` is terminated."""
    held = pool.get_size() - pool.get_idle_size()
    try:
        await asyncio.wait_for(pool.close(), timeout=timeout_s)
    except TimeoutError:
        log.error("db.pool_close_timeout", timeout_s=timeout_s, held_at_close=held)
        pool.terminate()


class PoolListener:
    """One pooled connection that LISTENs on a channel, re-opened after it dies, never leaked.

    A connection is acquired for as long as it listens; ``close()`` gives it back. Whatever interrupts opening it
    (an error, a cancel during ``stop()``) gives it back too: a connection kept by accident would make
    ``pool.close()`` wait forever.
    """

    def __init__(self, pool: asyncpg.Pool, channel: str, callback: Any) -> None:
        self.pool, self.channel, self.callback = pool, channel, callback
        self._conn: asyncpg.Connection | None = None

    @property
    def listening(self) -> bool:
        """Whether the listening connection is alive."""
        if self._conn is None:
            return False
        try:
            return not self._conn.is_closed()
        except asyncpg.InterfaceError:
            # its connection died and the pool took the (now detached) proxy back: every call on it raises
            return False

    async def ensure(self) -> bool:
        """Listen (again, if the connection died); False, logged, when the database cannot be reached."""
        if self.listening:
            return True
        await self.close()  # a dead connection: drop it (a no-op for a proxy the pool took back)
        try:
            conn: asyncpg.Connection = await self.pool.acquire()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("db.listen_failed", channel=self.channel, error=repr(exc))
            return False
        try:
            await conn.add_listener(self.channel, self.callback)
        except Exception as exc:
            await self.pool.release(conn)
            log.warning("db.listen_failed", channel=self.channel, error=repr(exc))
            return False
        except (
            BaseException
        ):  # cancelled mid-LISTEN (stop()): give the connection back, then let the cancel go on
            await asyncio.shield(self.pool.release(conn))
            raise
        self._conn = conn
        return True

    async def close(self) -> None:
        """Stop listening and give the connection back."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            # the same callback that was added: a pooled connection must not keep listening
            await conn.remove_listener(self.channel, self.callback)
        with contextlib.suppress(Exception):
            await asyncio.shield(self.pool.release(conn))


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """Acquire a connection and open a transaction on it."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn


async def fetch_one(conn: asyncpg.Connection, type_: type[T], sql: str, *args: Any) -> T | None:
    """The one row ``sql`` returns as a ``type_`` (a msgspec Struct whose fields are its columns), or None."""
    r = await conn.fetchrow(sql, *args)
    return msgspec.convert(dict(r), type_) if r is not None else None


def contains_pattern(text: str) -> str:
    """A ``LIKE``/``ILIKE`` pattern (with ``ESCAPE '\\'``) matching values that contain ``text`` literally: its
    ``%``, ``_`` and ``\\`` are escaped, so a user's search for ``100%`` is not a wildcard."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def inserted(conn: asyncpg.Connection, sql: str, *args: Any) -> bool:
    """Run an ``INSERT ... ON CONFLICT DO NOTHING RETURNING true``: True when it inserted, False on a conflict."""
    return bool(await conn.fetchval(sql, *args))


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.sql") if p.is_file())


async def migrate(dsn: str, *, schema: str, directories: list[Path]) -> list[str]:
    """Apply pending ``*.sql`` files (common ones first, then the service's) to ``schema``.

    Each file runs in its own transaction and is recorded in ``<schema>.schema_migrations``; a
    session advisory lock keyed on the schema makes concurrent runs wait instead of racing.
    Returns the versions applied. A changed, already-applied file is an error.
    """
    check_ident(schema)
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        lock_key = int.from_bytes(
            hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True
        )
        await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(f"SET search_path TO {schema}, public")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done: dict[str, str] = {
                r["version"]: r["checksum"]
                for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
            }
            for directory in [COMMON_MIGRATIONS, *directories]:
                prefix = "common/" if directory == COMMON_MIGRATIONS else ""
                for path in _files(directory):
                    version = prefix + path.name
                    sql = path.read_text()
                    checksum = hashlib.sha256(sql.encode()).hexdigest()
                    if version in done:
                        if done[version] != checksum:
                            raise RuntimeError(
                                f"migration {version} changed after it was applied to {schema}"
                            )
                        continue
                    async with conn.transaction():
                        await conn.execute(sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                            version,
                            checksum,
                        )
                    applied.append(version)
                    log.info("migration.applied", schema=schema, version=version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    finally:
        await conn.close()
    return applied


async def drop_schema(dsn: str, schema: str) -> None:
    """Drop a schema and everything in it (tests)."""
    check_ident(schema)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


async def ping(pool: asyncpg.Pool) -> None:
    """Raise unless the database answers."""
    async with pool.acquire(timeout=2) as conn:
        await conn.fetchval("SELECT 1", timeout=2)


#: errors that say the server is out of reach or going away, not that a statement was wrong
_UNREACHABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` is the database being out of reach (refused, reset or timed-out connection, a server
    shutting down), as opposed to a statement failing: what an API answers with 503 ``service.unavailable``."""
    if isinstance(exc, _UNREACHABLE):
        return True
    if isinstance(exc, OSError | TimeoutError) or (
        isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)
    ):
        # an OSError from storage or a socket of our own is not the database's: it must have come out of asyncpg
        tb = exc.__traceback__
        while tb is not None:
            if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg"):
                return True
            tb = tb.tb_next
    return False


Record = dict[str, Any]
