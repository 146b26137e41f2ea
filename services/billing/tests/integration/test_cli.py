"""The operator commands as an operator runs them: `python -m billing adjust|refund|check` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys


async def run(settings, *args: str) -> tuple[int, dict]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "DB_SCHEMA": settings.schema,
        "LOG_FORMAT": "json",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "billing",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, json.loads(out.decode().strip().splitlines()[-1])


async def test_adjust_writes_a_ledger_entry_once_per_reference(books, billing_settings) -> None:
    user = await books.register()
    args = [
        "adjust",
        "--account",
        str(user),
        "--amount",
        "-15",
        "--reason",
        "chargeback #42",
        "--reference",
        "cb-42",
    ]
    code, out = await run(billing_settings, *args)
    assert code == 0, out
    assert (out["kind"], out["amount"], out["balance_after"]) == ("adjustment", -15, 85)
    code, again = await run(billing_settings, *args)  # re-run by a nervous operator
    assert (code, again["entry_id"]) == (0, out["entry_id"])
    assert (await books.account(user)).balance == 85

    code, out = await run(
        billing_settings, "adjust", "--account", str(user), "--amount", "-1000", "--reason", "x"
    )
    assert (code, out["error"]) == (1, "credits.insufficient")
    assert await books.ledger_sum(user) == 85


async def test_refund_and_check_commands(books, billing_settings) -> None:
    user = await books.register()
    ref = await books.hold(user, 30)
    await books.settle(user, ref, 30)
    code, out = await run(
        billing_settings, "refund", "--hold-ref", ref, "--amount", "10", "--reason", "partial failure"
    )
    assert (code, out["kind"], out["balance_after"]) == (0, "refund", 80)
    code, out = await run(billing_settings, "check")
    assert (code, out) == (0, {"ok": True, "violations": []})
    async with books.pool.acquire() as conn:  # corrupt the cached balance behind the ledger's back
        await conn.execute("UPDATE accounts SET balance = balance + 5 WHERE id = $1", user)
    code, out = await run(billing_settings, "check")
    assert code == 1
    assert any("sum(ledger)" in v for v in out["violations"])
