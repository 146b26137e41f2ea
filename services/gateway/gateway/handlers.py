"""Event handlers: thin. Job snapshots feed the read model (durable queue); snapshots and credited payments feed
this replica's sockets (exclusive)."""

from __future__ import annotations

from common.bus import Delivery, Router
from common.events.billing import CreditsToppedUp
from common.events.jobs import JobProgress

from . import readmodel, store
from .live import SocketHub
from .metrics import JOB_SNAPSHOTS


def read_model_router(pool: store.Pool) -> Router:
    """Upsert each snapshot; idempotent by the job's ``seq`` (so no inbox row per progress tick)."""
    r = Router()

    @r.on(JobProgress, inbox=False)
    async def apply_snapshot(event: JobProgress, delivery: Delivery) -> None:
        async with store.transaction(pool) as conn:
            applied = await readmodel.apply_snapshot(conn, event)
        JOB_SNAPSHOTS.labels("applied" if applied else "stale").inc()

    return r


def fanout_router(hub: SocketHub) -> Router:
    """Push each snapshot, and each credited payment, to its owner's sockets on this replica."""
    r = Router()

    @r.on(JobProgress, inbox=False)
    async def push_snapshot(event: JobProgress, delivery: Delivery) -> None:
        await hub.on_job_progress(event)

    @r.on(CreditsToppedUp, inbox=False)
    async def push_topup(event: CreditsToppedUp, delivery: Delivery) -> None:
        await hub.on_topped_up(event)

    return r
