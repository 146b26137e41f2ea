"""Issue 14 item 6: a retried paid request (``Idempotency-Key``) is one job and one hold, through the real captions
API, the real billing price list and Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from billing.app import create_app as create_billing
from billing.config import BillingSettings
from captions.app import create_app
from captions.config import CaptionsSettings
from captions.seeding import seed_video
from common import db
from common.bus import MemoryBus
from common.service import POOL
from common.storage import ObjectStore
from common.testing.auth import TokenFactory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
BILLING_MIGRATIONS = Path(__file__).resolve().parents[3] / "billing" / "migrations"


async def test_a_retried_captions_request_is_one_paid_job(
    make_schema: Callable[..., Awaitable[str]],
    aiohttp_client: Any,
    aiohttp_server: Any,
    database_url: str,
    memory_bus: MemoryBus,
    fs_store: ObjectStore,
    token_factory: TokenFactory,
) -> None:
    billing_settings = BillingSettings(
        database_url=database_url,
        db_schema=await make_schema("billing", BILLING_MIGRATIONS),
        payment_webhook_secret="whsec_test_0123456789",
        log_format="console",
    )
    billing = await aiohttp_server(
        create_billing(billing_settings, role="api", bus=memory_bus, verifier=token_factory.verifier())
    )
    settings = CaptionsSettings(
        database_url=database_url,
        db_schema=await make_schema("captions", MIGRATIONS),
        billing_url=f"http://127.0.0.1:{billing.port}",
        log_format="console",
    )
    client = await aiohttp_client(
        create_app(settings, role="api", bus=memory_bus, store=fs_store, verifier=token_factory.verifier())
    )
    owner = uuid.uuid4()
    async with db.transaction(client.app[POOL]) as conn:
        video = await seed_video(conn, owner_id=owner, duration_s=90.0)
    path = f"/api/v1/videos/{video}/captions"
    headers = {**token_factory.headers(owner), "Idempotency-Key": "captions-1"}
    first = await client.post(path, json={"language": "en"}, headers=headers)
    assert first.status == 202, await first.text()
    again = await client.post(path, json={"language": "en"}, headers=headers)
    assert (again.status, await again.json()) == (202, await first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await client.post(path, json={"language": "de"}, headers=headers)
    assert other.status == 409 and (await other.json())["code"] == "idempotency.key_reused"
    async with client.app[POOL].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM jobs") == 1
        holds = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE routing_key = 'credits.hold_requested.v1'"
        )
    assert holds == 1  # charged once
    # without a key a second request is a second paid job
    plain = await client.post(path, json={"language": "en"}, headers=token_factory.headers(owner))
    assert plain.status == 202 and (await plain.json())["job"]["id"] != (await first.json())["job"]["id"]
