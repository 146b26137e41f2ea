"""PoolListener: LISTEN on a pooled connection without ever keeping a connection that pool.close() waits for."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from common import db


async def _pool(database_url: str, schema: str) -> asyncpg.Pool:
    return await db.create_pool(database_url, schema=schema, min_size=1, max_size=1)


async def test_notifications_arrive_and_close_gives_the_connection_back(
    database_url: str, fresh_schema: str
) -> None:
    pool = await _pool(database_url, fresh_schema)
    got: list[str] = []
    listener = db.PoolListener(pool, "pl_test", lambda *args: got.append(args[-1]))
    assert await listener.ensure() and listener.listening
    assert await listener.ensure()  # idempotent: still the one connection
    async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as other:
        await other.execute("SELECT pg_notify('pl_test', 'hello')")
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.02)
    assert got == ["hello"]
    await listener.close()
    assert not listener.listening and pool.get_idle_size() == 1
    await asyncio.wait_for(pool.close(), timeout=5)


async def test_a_cancel_while_opening_the_listener_leaks_no_connection(
    database_url: str, fresh_schema: str
) -> None:
    pool = await _pool(database_url, fresh_schema)
    listener = db.PoolListener(pool, "pl_test_cancel", lambda *args: None)
    task = asyncio.create_task(listener.ensure())
    # step the loop until the one connection is acquired: ensure() then waits inside LISTEN's round trip
    for _ in range(10_000):
        if pool.get_idle_size() == 0 or task.done():
            break
        await asyncio.sleep(0)
    assert not task.done(), "LISTEN finished before the cancel could land inside it"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not listener.listening
    await asyncio.wait_for(pool.close(), timeout=5)  # before the fix: waits forever for the kept connection


async def test_close_pool_terminates_a_connection_nobody_gives_back(
    database_url: str, fresh_schema: str
) -> None:
    pool = await _pool(database_url, fresh_schema)
    kept = await pool.acquire()  # a bug elsewhere: never released
    await asyncio.wait_for(db.close_pool(pool, timeout_s=0.5), timeout=5)
    with pytest.raises(asyncpg.InterfaceError):
        await kept.fetchval("SELECT 1")  # its connection was terminated and taken from the holder
