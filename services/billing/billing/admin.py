"""Operator commands: ``adjust``, ``refund`` and ``check`` (the books' invariants)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable

import asyncpg

from common import db
from common.errors import CodedError
from common.settings import ServiceSettings

from . import ledger, store
from .models import Entry


def _out(doc: object) -> None:
    sys.stdout.write(json.dumps(doc, default=str) + "\n")


def _entry_json(entry: Entry) -> dict[str, object]:
    """What the commands print for a ledger entry they wrote."""
    return {
        "entry_id": entry.id,
        "account_id": entry.account_id,
        "kind": entry.kind,
        "amount": entry.amount,
        "balance_after": entry.balance_after,
        "reference": entry.reference,
    }


async def _post_entry(
    settings: ServiceSettings, write: Callable[[asyncpg.Connection], Awaitable[Entry]]
) -> int:
    """Write one ledger entry in a transaction; print it as JSON, or the error code and exit 1 when refused."""
    try:
        async with db.settings_pool(settings, max_size=1) as pool, db.transaction(pool) as conn:
            entry = await write(conn)
    except CodedError as e:
        _out({"error": e.code, "message": e.message})
        return 1
    _out(_entry_json(entry))
    return 0


async def adjust_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    """Post an adjustment; print the entry as JSON; exit 1 with the error code when refused."""
    return await _post_entry(
        settings,
        lambda conn: ledger.adjust(
            conn, account_id=args.account, amount=args.amount, reason=args.reason, reference=args.reference
        ),
    )


async def refund_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    """Refund a captured hold; print the entry as JSON; exit 1 with the error code when refused."""
    return await _post_entry(
        settings,
        lambda conn: ledger.refund(conn, hold_ref=args.hold_ref, amount=args.amount, reason=args.reason),
    )


async def check_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    """Check every account's invariants; exit 1 and list the violations when any is broken."""
    async with (
        db.settings_pool(settings, max_size=1) as pool,
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        violations = await store.invariant_violations(conn)
    _out({"ok": not violations, "violations": violations})
    return 1 if violations else 0
