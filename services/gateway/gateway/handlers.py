"""Event handlers: thin. Job snapshots feed the read model (durable queue) and this replica's sockets (exclusive)."""

from __future__ import annotations

from common.bus import Delivery, Handler, PermanentError
from common.events.base import Event
from common.events.jobs import JobProgress

from . import readmodel, store
from .live import SocketHub
from .metrics import JOB_SNAPSHOTS


def read_model_handler(pool: store.Pool) -> Handler:
    """Upsert each snapshot; idempotent by the job's ``seq`` (so no inbox row per progress tick)."""

    async def handle(event: Event, delivery: Delivery) -> None:
        if not isinstance(event, JobProgress):
            raise PermanentError(f"unexpected event {event.type}")
        async with store.transaction(pool) as conn:
            applied = await readmodel.apply_snapshot(conn, event)
        JOB_SNAPSHOTS.labels("applied" if applied else "stale").inc()

    return handle


def fanout_handler(hub: SocketHub) -> Handler:
    """Push each snapshot to its owner's sockets on this replica."""

    async def handle(event: Event, delivery: Delivery) -> None:
        if isinstance(event, JobProgress):
            await hub.on_job_progress(event)

    return handle
