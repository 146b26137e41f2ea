"""Sending webhooks: the stream-event handler that queues one delivery per subscribed endpoint, and the sender
that posts them (signed, retried with back-off, every attempt logged)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
from prometheus_client import Counter, Histogram
from yarl import URL

from common.addresses import PublicOnlyResolver, ip_literal, is_forbidden
from common.bus.base import Delivery
from common.events.base import Event
from common.logging import get_logger
from common.metrics import ERRORS
from common.runtime import Periodic

from . import webhook_store as wstore
from .webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    RetryPolicy,
    build_body,
    public_event_name,
    sign,
)

log = get_logger(__name__)

WEBHOOK_ATTEMPTS = Counter(
    "reelforge_streaming_webhook_attempts_total", "Webhook delivery attempts", ["outcome"]
)  # outcome: delivered | retry | failed | canceled
WEBHOOK_LATENCY = Histogram(
    "reelforge_streaming_webhook_latency_seconds",
    "Webhook endpoint response time",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
WEBHOOKS_DISABLED = Counter("reelforge_streaming_webhooks_disabled_total", "Endpoints disabled for failing")


async def queue_deliveries(conn: asyncpg.Connection, event: Event, delivery: Delivery) -> None:
    """Inbox-wrapped handler: one delivery row per enabled endpoint of the owner subscribed to this event."""
    name = public_event_name(event)
    owner_id = getattr(event, "owner_id", None)
    if name is None or not isinstance(owner_id, uuid.UUID):
        return
    hooks = await wstore.subscribed_webhooks(conn, owner_id=owner_id, event_type=name)
    if not hooks:
        return
    body = build_body(event)
    for hook in hooks:
        await wstore.add_delivery(
            conn, delivery_id=uuid.uuid4(), webhook_id=hook.id, event_id=event.id, event_type=name, body=body
        )


def _ok(status_code: int | None) -> bool:
    """A 2xx answer."""
    return status_code is not None and 200 <= status_code < 300


class WebhookSender:
    """Sends due deliveries (leased with ``FOR UPDATE SKIP LOCKED``), logs every attempt, schedules retries."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        policy: RetryPolicy,
        timeout_s: float = 10.0,
        allow_private: bool = False,
        interval_s: float = 1.0,
        batch: int = 16,
        disable_after_s: float = 3 * 86400.0,
        disable_after_failures: int = 0,
        retention_s: float = 30 * 86400.0,
        rng: random.Random | None = None,
    ) -> None:
        self.pool, self.policy, self.timeout_s, self.allow_private = pool, policy, timeout_s, allow_private
        self.interval_s, self.batch = interval_s, batch
        self.disable_after_s, self.disable_after_failures = disable_after_s, disable_after_failures
        self.rng = rng or random.Random()
        self.retention_s = retention_s
        self._next_purge = 0.0
        self._rounds = Periodic(
            "webhook_dispatcher", interval_s, self._round, service="streaming", run_at_start=True
        )
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Open the HTTP client and start the rounds."""
        connector = aiohttp.TCPConnector(
            resolver=None if self.allow_private else PublicOnlyResolver(), limit=64, limit_per_host=8
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            headers={"User-Agent": USER_AGENT},
        )
        self._rounds.start()

    async def stop(self) -> None:
        """Finish the requests in hand (bounded by the timeout), then stop."""
        await self._rounds.stop(grace_s=self.timeout_s + 5)
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        """A delivery was just queued: look now instead of at the next poll."""
        self._rounds.wake()

    async def _round(self) -> float | None:
        """Send what is due; then wait until the next due time, a wake-up or the poll interval."""
        await self._housekeeping()
        if await self.dispatch_once():
            return 0.0
        async with self.pool.acquire() as conn:
            due_in: float | None = await wstore.next_due_in(conn)
        return due_in

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now < self._next_purge:
            return
        self._next_purge = now + 3600  # hourly is plenty; every replica doing it is harmless
        async with self.pool.acquire() as conn:
            purged = await wstore.purge_deliveries(conn, older_than_s=self.retention_s)
        if purged:
            log.info("webhook.log_purged", deliveries=purged)

    async def dispatch_once(self) -> int:
        """Lease a batch of due deliveries and send them concurrently; returns how many were attempted."""
        async with self.pool.acquire() as conn, conn.transaction():
            due = await wstore.claim_due_deliveries(conn, limit=self.batch, lease_s=self.timeout_s + 30)
        results = await asyncio.gather(*(self._attempt(d) for d in due), return_exceptions=True)
        for d, res in zip(due, results, strict=True):
            if isinstance(res, Exception):
                # the lease expires and the attempt is retried; one bad row never stalls the others
                ERRORS.labels("streaming", "webhook_attempt").inc()
                log.warning("webhook.attempt_error", delivery_id=str(d.id), error=repr(res))
            elif isinstance(res, BaseException):
                raise res
        return len(due)

    async def _attempt(self, d: wstore.DueDelivery) -> None:
        if not d.enabled:
            async with self.pool.acquire() as conn:
                await wstore.cancel_delivery(conn, delivery_id=d.id, reason="endpoint disabled")
            WEBHOOK_ATTEMPTS.labels("canceled").inc()
            return
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        status_code, error = await self._post(d)
        latency = time.perf_counter() - t0
        WEBHOOK_LATENCY.observe(latency)
        number, outcome, next_retry = d.attempts + 1, "delivered", None
        if not _ok(status_code):
            retry_at = datetime.now(UTC) + timedelta(seconds=self.policy.delay(number, rng=self.rng))
            if retry_at - d.created_at <= timedelta(seconds=self.policy.window_s):
                outcome, next_retry = "pending", retry_at
            else:
                outcome = "failed"
                error = (error or f"HTTP {status_code}") + "; retries exhausted"
        attempt = wstore.AttemptRecord(
            attempt=number,
            started_at=started,
            status_code=status_code,
            latency_ms=round(latency * 1000),
            error=error,
            next_retry_at=next_retry,
        )
        disabled = await self._record(d, attempt, outcome)
        WEBHOOK_ATTEMPTS.labels("retry" if outcome == "pending" else outcome).inc()
        log.info(
            "webhook.attempt",
            delivery_id=str(d.id),
            webhook_id=str(d.webhook_id),
            event_type=d.event_type,
            attempt=number,
            status_code=status_code,
            outcome=outcome,
            error=error,
        )
        if disabled is not None:
            WEBHOOKS_DISABLED.inc()
            log.warning("webhook.disabled", webhook_id=str(d.webhook_id), reason=disabled.disabled_reason)

    async def _record(
        self, d: wstore.DueDelivery, attempt: wstore.AttemptRecord, outcome: str
    ) -> wstore.WebhookRecord | None:
        """Log the attempt, move the delivery and the endpoint's failure streak, in one transaction."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await wstore.lock_webhook(conn, webhook_id=d.webhook_id):
                return None  # deleted while we were sending: its log went with it
            await wstore.record_attempt(conn, delivery_id=d.id, attempt=attempt, outcome=outcome)
            if _ok(attempt.status_code):
                await wstore.note_endpoint_success(conn, webhook_id=d.webhook_id)
                return None
            return await wstore.note_endpoint_failure(
                conn,
                webhook_id=d.webhook_id,
                disable_after_s=self.disable_after_s,
                disable_after_failures=self.disable_after_failures,
            )

    async def _post(self, d: wstore.DueDelivery) -> tuple[int | None, str | None]:
        assert self._session is not None
        host = URL(d.url).host or ""
        ip = ip_literal(host)
        if ip is not None and not self.allow_private and is_forbidden(ip):
            return None, f"{host} is not a public address"
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(d.secret, d.body),
            EVENT_ID_HEADER: str(d.event_id),
            EVENT_TYPE_HEADER: d.event_type,
        }
        try:
            async with self._session.post(
                d.url, data=d.body.encode(), headers=headers, allow_redirects=False
            ) as resp:
                # the body is read (bounded) only so the connection can be reused
                await resp.content.read(64 * 1024)
                return (
                    resp.status,
                    None if 200 <= resp.status < 300 else f"HTTP {resp.status} {resp.reason or ''}".strip(),
                )
        except TimeoutError:
            return None, f"timed out after {self.timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
