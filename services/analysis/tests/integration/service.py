"""The analysis service in-process for integration tests: its api and worker apps on a fresh schema and queue, the
real RabbitMQ bus, the filesystem store, the Gemini stub and billing's side of the saga played on the bus."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from analysis.config import AnalysisSettings
from common.events.billing import CreditsHoldGranted
from common.testing.gemini import GeminiStub
from common.testing.waiting import wait_for

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
PRICE = 5


def talk_lines(
    topics: list[list[str]], *, seconds_per_sentence: float = 12.0
) -> list[tuple[float, float, str]]:
    """Subtitle lines, one sentence each, back to back from 0:00."""
    flat = [s for topic in topics for s in topic]
    return [(i * seconds_per_sentence, (i + 1) * seconds_per_sentence - 0.5, s) for i, s in enumerate(flat)]


def settings_for(
    *,
    database_url: str,
    schema: str,
    queue: str,
    gemini: GeminiStub | None,
    redis_url: str,
    tmp: Path,
    **kw: Any,
) -> AnalysisSettings:
    """Settings of an in-process analysis service."""
    gemini_kw = (
        {"gemini_api_key": gemini.api_key, "gemini_base_url": gemini.base_url, "gemini_model": "gemini-stub"}
        if gemini is not None
        else {"gemini_api_key": ""}  # whatever the environment says: no key, the offline engine
    )
    return AnalysisSettings(
        database_url=database_url,
        db_schema=schema,
        bus_queue=queue,
        redis_url=redis_url,
        tmp_dir=str(tmp / "scratch"),
        import_allow_private=True,
        log_format="console",
        job_lease_s=6.0,
        job_poll_interval_s=0.2,
        gemini_retry_base_s=0.05,
        gemini_retry_max_s=0.2,
        **gemini_kw,
        **{"subtitle_backoff_s": ("0.2", "0.5"), **kw},
    )


@dataclass
class Service:
    """The running service and what a test needs to drive it."""

    api: TestClient[Any, Any]
    pool: asyncpg.Pool
    queue: str
    bus: Any
    user: uuid.UUID
    auth: dict[str, str]

    async def grant_holds(self) -> int:
        """Billing's answer to every hold still requested: granted (as billing publishes it)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT hold_ref, account_id, amount FROM credit_holds WHERE status = 'requested'"
            )
        for r in rows:
            await self.bus.publish(
                CreditsHoldGranted(
                    hold_ref=r["hold_ref"], account_id=r["account_id"], amount=r["amount"], producer="billing"
                )
            )
        return len(rows)

    async def get(self, path: str) -> tuple[int, Any]:
        """GET a JSON path as the user."""
        async with self.api.get(path, headers=self.auth) as r:
            return r.status, await r.json()

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        """POST JSON as the user."""
        async with self.api.post(path, json=body, headers=self.auth) as r:
            return r.status, await r.json()

    async def ended(self, analysis_id: str, *, timeout: float = 90) -> dict[str, Any]:
        """The analysis once it has ended (succeeded, failed or canceled)."""

        async def ended() -> dict[str, Any] | None:
            status, body = await self.get(f"/api/v1/analyses/{analysis_id}")
            return body if status == 200 and body["state"] not in ("queued", "running") else None

        done: dict[str, Any] = await wait_for(ended, timeout=timeout, interval=0.3)
        return done

    async def analyse(self, url: str, **options: str) -> dict[str, Any]:
        """Ask for an analysis of ``url`` (with ``options``), fund it as billing would, and wait for it to end."""
        status, accepted = await self.post("/api/v1/analyses", {"url": url, "options": options})
        assert status == 202, accepted
        await self.grant_holds()
        return await self.ended(accepted["analysis"]["id"])
