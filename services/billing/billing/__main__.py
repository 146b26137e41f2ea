"""``python -m billing api|worker|migrate|adjust|refund|check``."""

from __future__ import annotations

import argparse
import uuid

from common.service import main_exit, service_entry

from . import admin
from .app import create_app
from .config import BillingSettings


def _adjust_args(p: argparse.ArgumentParser) -> None:
    p.description = "Post an admin adjustment to an account's ledger."
    p.add_argument("--account", required=True, type=uuid.UUID, help="account (user) id")
    p.add_argument("--amount", required=True, type=int, help="credits, negative to debit")
    p.add_argument("--reason", required=True, help="why (kept on the ledger entry)")
    p.add_argument("--reference", default=None, help="idempotency key: re-running with it posts nothing new")


def _refund_args(p: argparse.ArgumentParser) -> None:
    p.description = "Refund (part of) what a hold captured, once per hold."
    p.add_argument("--hold-ref", required=True)
    p.add_argument("--amount", type=int, default=None, help="credits (default: everything captured)")
    p.add_argument("--reason", required=True)


main = service_entry(
    __file__,
    BillingSettings,
    create_app,
    commands={
        "adjust": (admin.adjust_command, _adjust_args),
        "refund": (admin.refund_command, _refund_args),
        "check": (admin.check_command, None),
    },
)


if __name__ == "__main__":
    main_exit(main())
