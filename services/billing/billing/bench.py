"""``python -m billing.bench``: holds placed and settled per second through the real handler path and Postgres.

Each requester loops hold → settle on its account, delivering the events to the worker's real bus handler
(inbox claim → ledger → outbox, one transaction each) — RabbitMQ is not in the loop, so the numbers are
billing's own cost, not the broker's. The baseline is the same concurrency running the raw cost of a money
movement: one transaction with one INSERT and one UPDATE of an account row. Invariants are checked at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from common import db
from common.bus.base import Delivery
from common.events.billing import CreditsHoldRequested, CreditsSettleRequested
from common.events.gateway import UserRegistered
from common.logging import configure_logging
from common.service import migrations_beside

from . import handlers, store
from .config import BillingSettings

MIGRATIONS = migrations_beside(__file__)


async def _timed(requesters: int, work: Callable[[int], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(work(i) for i in range(requesters)))
    return time.perf_counter() - started


async def _baseline(pool: asyncpg.Pool, *, requesters: int, cycles: int, accounts: int) -> float:
    """Transactions per second of INSERT + UPDATE (two per cycle, like hold + settle)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE bench_rows (id bigserial PRIMARY KEY, account int NOT NULL, amount bigint NOT NULL);"
            "CREATE TABLE bench_accounts (id int PRIMARY KEY, total bigint NOT NULL DEFAULT 0)"
        )
        await conn.execute("INSERT INTO bench_accounts (id) SELECT generate_series(0, $1 - 1)", accounts)

    async def work(i: int) -> None:
        for _ in range(cycles * 2):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO bench_rows (account, amount) VALUES ($1, 1)", i % accounts)
                await conn.execute("UPDATE bench_accounts SET total = total + 1 WHERE id = $1", i % accounts)

    elapsed = await _timed(requesters, work)
    async with pool.acquire() as conn:
        await conn.execute("DROP TABLE bench_rows, bench_accounts")
    return requesters * cycles * 2 / elapsed


async def _scenario(
    pool: asyncpg.Pool, settings: BillingSettings, *, requesters: int, cycles: int, accounts: int
) -> tuple[float, list[str]]:
    """Hold+settle cycles per second; and what is wrong with the books afterwards (nothing, we hope)."""
    handler = handlers.router(settings).handler(pool=pool)
    ids = [uuid.uuid4() for _ in range(accounts)]
    for account in ids:
        await handler(
            UserRegistered(user_id=account, email="bench@example.test"), Delivery("user.registered.v1")
        )

    async def work(i: int) -> None:
        account = ids[i % accounts]
        for c in range(cycles):
            ref = f"bench-{i}-{c}-{uuid.uuid4().hex[:6]}"
            await handler(CreditsHoldRequested(hold_ref=ref, account_id=account, amount=2), Delivery("hold"))
            await handler(
                CreditsSettleRequested(hold_ref=ref, account_id=account, capture=1), Delivery("settle")
            )

    elapsed = await _timed(requesters, work)
    problems: list[str] = []
    async with pool.acquire() as conn:
        problems += await store.invariant_violations(conn)
        captured_each = requesters * cycles // accounts
        for account in ids:
            a = await store.get_account(conn, account_id=account)
            if a is None or a.held != 0 or a.balance != settings.signup_grant - captured_each:
                problems.append(
                    f"account {account}: {a} (expected balance {settings.signup_grant - captured_each})"
                )
    return requesters * cycles / elapsed, problems


async def run(*, requesters: int, cycles: int, database_url: str) -> int:
    """Run every scenario on a scratch schema and print the numbers; 1 when an invariant broke."""
    schema = f"billing_bench_{uuid.uuid4().hex[:8]}"
    # enough credits for every cycle to capture 1 on a single shared account
    settings = BillingSettings(
        database_url=database_url, db_schema=schema, signup_grant=requesters * cycles * 2, log_level="WARNING"
    )
    await db.migrate(database_url, schema=schema, directories=[MIGRATIONS])
    pool = await db.create_pool(database_url, schema=schema, min_size=20, max_size=20)
    failed = False
    print(
        f"billing bench: {requesters} concurrent requesters x {cycles} hold+settle cycles, pool of 20 connections"
    )
    print("path: worker handler (inbox -> ledger -> outbox), real Postgres; RabbitMQ not in the loop")
    try:
        for accounts in (1, requesters):
            base = await _baseline(pool, requesters=requesters, cycles=cycles, accounts=accounts)
            rate, problems = await _scenario(
                pool, settings, requesters=requesters, cycles=cycles, accounts=accounts
            )
            ops = rate * 2  # a cycle is one hold and one settle, each its own transaction
            print(
                f"{accounts:>3} account(s): {rate:8.0f} holds placed+settled/s ({ops:6.0f} saga tx/s)"
                f" | baseline INSERT+UPDATE {base:6.0f} tx/s | overhead x{base / ops:4.1f}"
                f" | invariants {'OK' if not problems else 'BROKEN'}"
            )
            for p in problems[:10]:
                print("   ", p)
            failed |= bool(problems)
    finally:
        await pool.close()
        await db.drop_schema(database_url, schema)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m billing.bench")
    parser.add_argument("--requesters", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=10, help="hold+settle cycles per requester")
    args = parser.parse_args(argv)
    configure_logging(service="billing-bench", level="WARNING")
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return asyncio.run(run(requesters=args.requesters, cycles=args.cycles, database_url=url))


if __name__ == "__main__":
    sys.exit(main())
