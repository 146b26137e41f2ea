"""Every service's HTTP contract, one test for all: routes and OpenAPI document agree, real answers match it.

For each service in ``SERVICES`` (its api app on a fresh schema, real Postgres, the filesystem store):

- every registered route is in its route table and documented (or marked ``documented=False``), and every documented
  operation is routed;
- a short scripted session (the calls a client makes, good and bad) is recorded, every operation of the document is
  called at least once, and every recorded answer is documented for its status and validates against its schema;
- schemathesis sends generated requests (a bounded number per operation) and no answer is a 5xx.

And all of them at once behind the real gateway (each on its own port, verifying tokens with the gateway's JWKS):
schemathesis over the gateway's aggregated document, through its proxy, as a registered user: no answer is a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import json
import re
import time
import typing
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import jsonschema
import pytest
import schemathesis
import yarl
from aiohttp import web
from aiohttp.test_utils import TestClient
from schemathesis import GenerationMode

from common.openapi import API
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
from common.testing.http import price_list, served_at, serving
from common.testing.media import make_video
from common.testing.process import free_port

ROOT = Path(__file__).resolve().parents[2]
#: routes every app has (common.http) and the document itself: not part of a service's contract
INFRA = {"/healthz", "/readyz", "/metrics", "/openapi.json"}
#: generated requests per operation and mode (valid, invalid): well under a minute for all four services
EXAMPLES = 10


@dataclass
class Call:
    """One recorded exchange."""

    method: str
    route: str
    status: int
    content_type: str
    body: bytes | None


@dataclass
class Session:
    """What a scripted session needs: the client, a user's headers, and room for ids it learns."""

    client: TestClient[web.Request, web.Application]
    auth: dict[str, str]
    other: dict[str, str]
    tmp: Path
    ids: dict[str, Any] = field(default_factory=dict)


Script = Callable[[Session], Awaitable[None]]


CleanupCtx = Callable[[web.Application], Any]


@dataclass(frozen=True)
class Service:
    """How to start one service's api app for these tests, and what a client does with it."""

    name: str
    #: its settings beyond the database and schema, given the test's temp dir
    settings: Callable[[Path], dict[str, Any]]
    script: Script
    #: what its ``create_app`` is given besides the bus
    injects: tuple[str, ...] = ("store", "verifier")
    #: the servers its settings point at (started before the app's own resources)
    stubs: Callable[[Any], list[CleanupCtx]] = lambda settings: []


def _build(
    service: Service,
    schema: str,
    tmp: Path,
    db: str,
    store: ObjectStore,
    bus: Any,
    *,
    tokens: TokenFactory | None = None,
    links: dict[str, Any] | None = None,
) -> web.Application:
    """``<name>.app.create_app`` on settings of the type it takes, in the api role.

    Alone (``tokens``): it trusts ``tokens``' key and its stubs stand in for the services it calls. In a platform
    (``links``): those of ``links``' settings its type has point it at the real services (``billing_url``,
    ``upstream_ingest``, ``jwks_url``: it verifies tokens with the gateway's keys, as in production).
    """
    create_app = importlib.import_module(f"{service.name}.app").create_app
    settings_type = typing.get_type_hints(create_app)["settings"]
    names = {f.name for f in fields(settings_type)}
    wired = {k: v for k, v in (links or {}).items() if k in names}
    # a few connections each: the whole platform runs in one test beside the e2e stack (Postgres allows 100)
    settings = settings_type(
        database_url=db, db_schema=schema, **{"db_pool_max": 3, **service.settings(tmp), **wired}
    )
    injected: dict[str, Any] = {"store": store}
    if tokens is not None:
        injected["verifier"] = tokens.verifier()
    app: web.Application = create_app(
        settings, role="api", bus=bus, **{k: injected[k] for k in service.injects if k in injected}
    )
    if links is None:
        app.cleanup_ctx[0:0] = service.stubs(settings)
    return app


# -- the services ------------------------------------------------------------------------------------------------


def _billing(tmp: Path) -> dict[str, Any]:
    return {
        "payment_webhook_secret": "whsec_contract_0123456789",
        "billing_test_payments": True,
        "log_format": "console",
    }


async def _billing_script(s: Session) -> None:
    from billing import webhook

    c = s.client
    await c.get("/api/v1/billing/prices")
    await c.get("/api/v1/billing/balance", headers=s.auth)
    await c.get("/api/v1/billing/balance")
    order = await (await c.post("/api/v1/billing/topups", json={"amount": 100}, headers=s.auth)).json()
    await c.post("/api/v1/billing/topups", json={"amount": -1}, headers=s.auth)
    await c.post("/api/v1/billing/topups", data=b"{", headers={**s.auth, "Content-Type": "application/json"})
    await c.get(f"/api/v1/billing/topups/{order['order_id']}", headers=s.auth)
    await c.get(f"/api/v1/billing/topups/{order['order_id']}", headers=s.other)
    body = json.dumps(
        {
            "orderId": order["order_id"],
            "paymentKey": "pk_1",
            "amount": order["price"]["amount"],
            "status": "DONE",
        }
    ).encode()
    signed = webhook.signed_headers("whsec_contract_0123456789", int(time.time()), body)
    await c.post("/api/v1/billing/payments/webhook", data=body, headers=signed)
    await c.post("/api/v1/billing/payments/webhook", data=body)
    page = await (await c.get("/api/v1/billing/ledger?limit=1", headers=s.auth)).json()
    await c.get("/api/v1/billing/ledger", params={"cursor": page["next_cursor"] or ""}, headers=s.auth)
    await c.get("/api/v1/billing/ledger?limit=0", headers=s.auth)
    other = await (await c.post("/api/v1/billing/topups", json={"amount": 50}, headers=s.auth)).json()
    await c.post(f"/api/v1/billing/topups/{other['order_id']}/test-pay", headers=s.auth)
    await c.post(f"/api/v1/billing/topups/{other['order_id']}/test-pay", headers=s.other)


def _ingest(tmp: Path) -> dict[str, Any]:
    return {"tmp_dir": str(tmp / "tmp"), "log_format": "console", "import_allow_private": True}


async def _ingest_script(s: Session) -> None:
    c = s.client
    video = make_video(seconds=1.0)
    form = {"file": video.read_bytes(), "title": "contract"}
    created = await (await c.post("/api/v1/videos", data=form, headers=s.auth)).json()
    await c.post("/api/v1/videos", data={"file": b"not a video"}, headers=s.auth)
    await c.post(
        "/api/v1/videos",
        data=b"--x\r\n",
        headers={**s.auth, "Content-Type": "multipart/form-data; boundary=y"},
    )
    await c.get("/api/v1/videos?limit=1", headers=s.auth)
    await c.get("/api/v1/videos?limit=x", headers=s.auth)
    await c.get(f"/api/v1/videos/{created['id']}", headers=s.auth)
    await c.get(f"/api/v1/videos/{created['id']}", headers=s.other)
    await c.patch(f"/api/v1/videos/{created['id']}", json={"title": "renamed"}, headers=s.auth)
    await c.patch(f"/api/v1/videos/{created['id']}", json={"title": " "}, headers=s.auth)
    await c.patch(f"/api/v1/videos/{uuid.uuid4()}", json={"description": "x"}, headers=s.auth)
    url = {"url": "http://127.0.0.1:9/v.mp4"}  # an address literal: no DNS in tests
    imp = await (await c.post("/api/v1/imports", json=url, headers=s.auth)).json()
    await c.post("/api/v1/imports", json=url, headers=s.auth)  # the same running import
    await c.post("/api/v1/imports", json={"url": "ftp://127.0.0.1/x"}, headers=s.auth)
    await c.get(f"/api/v1/imports/{imp['import_id']}", headers=s.auth)
    await c.get(f"/api/v1/imports/{uuid.uuid4()}", headers=s.auth)
    found = await (
        await c.post("/api/v1/searches", json={"platform": "youtube", "query": "cats"}, headers=s.auth)
    ).json()
    await c.post("/api/v1/searches", json={"platform": "vimeo", "query": "cats"}, headers=s.auth)
    await c.get(f"/api/v1/searches/{found['search_id']}?sort=views", headers=s.auth)
    await c.get(f"/api/v1/searches/{found['search_id']}?sort=nope", headers=s.auth)
    await c.delete(f"/api/v1/videos/{created['id']}", headers=s.auth)
    await c.delete(f"/api/v1/videos/{created['id']}", headers=s.auth)


def _streaming(tmp: Path) -> dict[str, Any]:
    return {
        "public_base_url": "http://play.example.test",
        "webhook_allow_private": True,  # generated URLs must not send these tests to DNS
        "log_format": "console",
    }


async def _streaming_script(s: Session) -> None:
    from streaming import store as media_store
    from streaming import webhook_store

    c = s.client
    vid = uuid.uuid4()
    pool = s.client.app[_pool_key()]
    async with pool.acquire() as conn:
        await media_store.create_stream(
            conn,
            video_id=vid,
            owner_id=uuid.UUID(s.ids["user"]),
            source_key=f"originals/{vid}/a.mp4",
            duration_s=2.0,
            width=320,
            height=240,
            has_dash=False,
        )
    await c.get(f"/api/v1/videos/{vid}/stream", headers=s.auth)
    await c.get(f"/api/v1/videos/{vid}/stream", headers=s.other)
    await c.post(f"/api/v1/videos/{vid}/playback", json={}, headers=s.auth)  # 409: still processing
    await c.post(f"/api/v1/videos/{uuid.uuid4()}/playback", headers=s.auth)
    await c.post(f"/api/v1/videos/{vid}/stream/retry", headers=s.auth)  # 409: nothing failed
    async with pool.acquire() as conn:
        await media_store.set_status(
            conn,
            video_id=vid,
            status="error",
            error={"code": "job.canceled", "message": "canceled by the user"},
        )
    states = f"/api/v1/streams?video_ids={vid},{uuid.uuid4()}"
    await c.get(states, headers=s.auth)  # 200: the error carried, the unknown id not_found
    await c.get(states, headers=s.other)  # 200: both not_found
    await c.get("/api/v1/streams?video_ids=nope", headers=s.auth)  # 422
    await c.post(f"/api/v1/videos/{vid}/stream/retry", headers=s.auth)  # 202: a new transcode job
    await c.post(f"/api/v1/videos/{uuid.uuid4()}/stream/retry", headers=s.auth)
    await c.get(f"/play/{vid}/master.m3u8?token=nope")
    hook = await (
        await c.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/h", "events": ["stream.ready"]},
            headers=s.auth,
        )
    ).json()
    await c.post("/api/v1/webhooks", json={"url": "ftp://x", "events": ["stream.ready"]}, headers=s.auth)
    await c.get("/api/v1/webhooks", headers=s.auth)
    hook_path = f"/api/v1/webhooks/{hook['id']}"
    await c.get(hook_path, headers=s.auth)
    await c.post(f"{hook_path}/enable", headers=s.auth)
    await c.get(f"{hook_path}/deliveries?limit=5", headers=s.auth)
    await c.get(f"{hook_path}/deliveries?limit=500", headers=s.auth)
    delivery = uuid.uuid4()
    async with pool.acquire() as conn:
        await webhook_store.add_delivery(
            conn,
            delivery_id=delivery,
            webhook_id=uuid.UUID(hook["id"]),
            event_id=uuid.uuid4(),
            event_type="stream.ready",
            body="{}",
        )
    redeliver = f"{hook_path}/deliveries/{delivery}/redeliver"
    await c.post(redeliver, headers=s.auth)  # 409: still waiting for its first attempt
    async with pool.acquire() as conn:
        await conn.execute("UPDATE webhook_deliveries SET status = 'failed' WHERE id = $1", delivery)
    await c.post(redeliver, headers=s.auth)  # 202
    await c.post(f"{hook_path}/deliveries/{uuid.uuid4()}/redeliver", headers=s.auth)
    await c.delete(hook_path, headers=s.auth)
    await c.get(hook_path, headers=s.auth)


def _gateway(tmp: Path) -> dict[str, Any]:
    from gateway.keys import generate_key

    generate_key(tmp / "keys")
    return {
        "gateway_keys_dir": str(tmp / "keys"),
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "rate_limiter": "memory",
        "openapi_fetch_timeout_s": 0.2,
        "log_level": "WARNING",
    }


async def _gateway_script(s: Session) -> None:
    c = s.client
    creds = {"email": f"u{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery"}
    await c.post("/api/v1/auth/register", json=creds)
    await c.post("/api/v1/auth/register", json=creds)
    await c.post("/api/v1/auth/register", json={"email": "nope", "password": "x"})
    pair = await (await c.post("/api/v1/auth/login", json=creds)).json()
    await c.post("/api/v1/auth/login", json={**creds, "password": "wrong password!"})
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    await c.get("/api/v1/me", headers=auth)
    await c.get("/api/v1/me")
    fresh = await (await c.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})).json()
    auth = {"Authorization": f"Bearer {fresh['access_token']}"}
    await c.get("/api/v1/jobs?limit=5", headers=auth)
    await c.get("/api/v1/jobs?status=exploded", headers=auth)
    await c.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=auth)
    await c.post(f"/api/v1/jobs/{uuid.uuid4()}/cancel", headers=auth)
    ws = await c.ws_connect(f"/api/v1/ws?access_token={fresh['access_token']}")
    await ws.close()
    key = await (await c.post("/api/v1/auth/keys", json={"name": "ci", "scope": "read"}, headers=auth)).json()
    await c.post("/api/v1/auth/keys", json={"name": ""}, headers=auth)
    await c.post(
        "/api/v1/auth/keys", json={"name": "more"}, headers={"Authorization": f"Bearer {key['key']}"}
    )
    await c.get("/api/v1/auth/keys", headers={"Authorization": f"Bearer {key['key']}"})
    await c.get("/api/v1/auth/keys", headers={"Authorization": "Bearer rf_live_000000000000_nope"})
    await c.delete(f"/api/v1/auth/keys/{key['id']}", headers=auth)
    await c.delete(f"/api/v1/auth/keys/{key['id']}", headers={"Authorization": f"Bearer {key['key']}"})
    await c.delete(f"/api/v1/auth/keys/{uuid.uuid4()}", headers=auth)
    await c.get("/.well-known/jwks.json")
    await c.get("/api/v1/openapi.json")
    await c.post("/api/v1/auth/logout", json={"refresh_token": fresh["refresh_token"]}, headers=auth)
    await c.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})  # reused: refused


def _paid(tmp: Path) -> dict[str, Any]:
    """A paid service's settings: billing (its price list) where a stub will answer."""
    return {"billing_url": f"http://127.0.0.1:{free_port()}", "log_format": "console"}


async def _captions_script(s: Session) -> None:
    from captions.seeding import seed_track, seed_video
    from common.db import transaction

    c = s.client
    owner = uuid.UUID(s.ids["user"])
    async with transaction(c.app[_pool_key()]) as conn:
        vid = await seed_video(conn, owner_id=owner)
        track = await seed_track(
            conn,
            video_id=vid,
            owner_id=owner,
            cues=[{"id": "c1", "start_ms": 0, "end_ms": 2000, "lines": ["Hi."]}],
        )
    await c.app[_store_key()].put(track.vtt_key, b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHi.\n")
    await c.post(f"/api/v1/videos/{vid}/captions", json={"language": "en"}, headers=s.auth)
    # no Gemini key: a translation is refused at once, before anything is priced or held
    refused = await c.post(f"/api/v1/videos/{vid}/captions", json={"translate_to": ["es"]}, headers=s.auth)
    assert refused.status == 422 and (await refused.json())["code"] == "captions.translation_unavailable"
    async with c.app[_pool_key()].acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM credit_holds") == 1  # only the first request's
    await c.post(f"/api/v1/videos/{vid}/captions", json={"language": "en"}, headers=s.other)
    await c.get(f"/api/v1/videos/{vid}/captions", headers=s.auth)
    await c.get(f"/api/v1/videos/{vid}/captions", headers=s.other)
    await c.get(f"/api/v1/captions/{track.id}.vtt", headers=s.auth)
    await c.get(f"/api/v1/captions/{track.id}.srt", headers=s.auth)  # its file is not there
    await c.get(f"/api/v1/captions/{track.id}.vtt", headers=s.other)
    await c.get(f"/api/v1/captions/{track.id}/quality", headers=s.auth)
    await c.get(f"/api/v1/captions/{track.id}/quality", headers=s.other)
    cue = {"id": "c1", "start": 0.0, "end": 2.0, "text": "Hello."}
    await c.put(f"/api/v1/captions/{track.id}/cues", json={"cues": [cue], "base_version": 1}, headers=s.auth)
    await c.put(f"/api/v1/captions/{track.id}/cues", json={"cues": [cue], "base_version": 1}, headers=s.auth)
    bad = {**cue, "end": 0.1}
    await c.put(f"/api/v1/captions/{track.id}/cues", json={"cues": [bad]}, headers=s.auth)
    await c.delete(f"/api/v1/captions/{track.id}", headers=s.auth)
    await c.delete(f"/api/v1/captions/{track.id}", headers=s.auth)


def _render(tmp: Path) -> dict[str, Any]:
    return {**_paid(tmp), "ingest_url": f"http://127.0.0.1:{free_port()}", "tmp_dir": str(tmp / "tmp")}


def _empty_library(url: str) -> Callable[[web.Application], Any]:
    """Ingest's HTTP API where render's settings look: every search and video is another user's (404)."""
    ingest = web.Application()
    gone = {"type": "about:blank", "title": "Not Found", "status": 404, "code": "not_found"}
    for path in ("/api/v1/searches/{id}", "/api/v1/videos/{id}"):
        ingest.router.add_get(path, lambda _: web.json_response(gone, status=404))
    return served_at(url, ingest)


async def _render_script(s: Session) -> None:
    c = s.client
    urls = [f"https://www.youtube.com/watch?v={k}" for k in "abc"]
    body = {"title": "Top 3", "source": {"urls": urls}}
    project = await (await c.post("/api/v1/rankings", json=body, headers=s.auth)).json()
    await c.post("/api/v1/rankings", json={"title": "x", "source": {}}, headers=s.auth)
    await c.post(
        "/api/v1/rankings", json={"title": "x", "source": {"search_id": str(uuid.uuid4())}}, headers=s.auth
    )
    await c.get("/api/v1/rankings?limit=1", headers=s.auth)
    await c.get("/api/v1/rankings?limit=0", headers=s.auth)
    path = f"/api/v1/rankings/{project['id']}"
    await c.get(path, headers=s.auth)
    await c.get(path, headers=s.other)
    ids = [{"id": i["id"]} for i in project["items"]]
    await c.patch(path, json={"items": ids[::-1], "base_version": 1}, headers=s.auth)
    await c.patch(path, json={"title": "again", "base_version": 1}, headers=s.auth)
    await c.patch(path, json={"items": [{"id": ids[0]["id"], "end_s": 0.2}, *ids[1:]]}, headers=s.auth)
    render = await (await c.post(f"{path}/renders", headers=s.auth)).json()
    await c.post(f"{path}/renders", headers=s.other)
    await c.get(f"{path}/renders", headers=s.auth)
    await c.get(f"/api/v1/renders/{render['id']}", headers=s.other)
    # as if the render had run: its file stored, its job succeeded
    key = f"renders/{render['id']}/short.mp4"
    await c.app[_store_key()].put(key, b"not really an mp4", content_type="video/mp4")
    async with c.app[_pool_key()].acquire() as conn:
        await conn.execute(
            "UPDATE renders SET output_key = $2, duration_s = 3 WHERE id = $1", uuid.UUID(render["id"]), key
        )
        await conn.execute(
            "UPDATE jobs SET status = 'succeeded', progress = 100 WHERE id = $1", uuid.UUID(render["id"])
        )
    done = await (await c.get(f"/api/v1/renders/{render['id']}", headers=s.auth)).json()
    await c.get(done["download_url"])
    await c.get(done["download_url"].replace("sig=", "sig=0"))


async def _analysis_script(s: Session) -> None:
    c = s.client
    url = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    made = await (
        await c.post("/api/v1/analyses", json={"url": url, "options": {"detail": "brief"}}, headers=s.auth)
    ).json()
    aid = made["analysis"]["id"]
    await c.post("/api/v1/analyses", json={"video_id": str(uuid.uuid4())}, headers=s.auth)
    await c.post("/api/v1/analyses", json={"url": url, "video_id": str(uuid.uuid4())}, headers=s.auth)
    await c.get("/api/v1/analyses?limit=1", headers=s.auth)
    await c.get(f"/api/v1/analyses/{aid}", headers=s.auth)
    await c.get(f"/api/v1/analyses/{aid}", headers=s.other)
    await c.get(f"/api/v1/analyses/{aid}/transcript", headers=s.auth)  # none yet
    await c.get(f"/api/v1/analyses/{aid}/transcript.txt", headers=s.auth)
    batch = await (
        await c.post(
            "/api/v1/analyses/batches", json={"items": [{"url": url}, {"url": url + "x"}]}, headers=s.auth
        )
    ).json()
    batch_path = f"/api/v1/analyses/batches/{batch['batch']['id']}"
    await c.post("/api/v1/analyses/batches", json={"items": []}, headers=s.auth)
    form = aiohttp.FormData()
    form.add_field("file", f"url\n{url}\n", filename="urls.csv", content_type="text/csv")
    form.add_field("detail", "brief")
    await c.post("/api/v1/analyses/batches/csv", data=form, headers=s.auth)
    upload = aiohttp.FormData()  # the same CSV uploaded to the batches route itself, or sent as the body
    upload.add_field("file", f"url\n{url}\n", filename="urls.csv", content_type="text/csv")
    await c.post("/api/v1/analyses/batches", data=upload, headers=s.auth)
    csv_body = {**s.auth, "Content-Type": "text/csv"}
    await c.post("/api/v1/analyses/batches?detail=brief", data=f"{url}\n".encode(), headers=csv_body)
    await c.post("/api/v1/analyses/batches", data=b"url\nnot a url\n", headers=csv_body)
    await c.get("/api/v1/analyses/batches", headers=s.auth)
    await c.get(batch_path, headers=s.auth)
    await c.get(batch_path, headers=s.other)
    await c.get(f"{batch_path}/items?limit=1", headers=s.auth)
    await c.get(f"{batch_path}/items?state=failed", headers=s.auth)
    await c.get(f"{batch_path}/items?state=lost", headers=s.auth)  # no such state: 422
    await c.get(f"{batch_path}/export?format=csv", headers=s.auth)
    await c.post(f"{batch_path}/pause", headers=s.auth)
    await c.post(f"{batch_path}/pause", headers=s.auth)  # not running: 409
    await c.post(f"{batch_path}/resume", headers=s.auth)
    await c.post(f"{batch_path}/retry-failed", headers=s.auth)
    await c.post(f"{batch_path}/cancel", headers=s.auth)


SERVICES = [
    Service(
        "analysis",
        _paid,
        _analysis_script,
        stubs=lambda s: [price_list(s.billing_url, {"analysis_per_video": 5})],
    ),
    Service("billing", _billing, _billing_script, injects=("verifier",)),
    Service(
        "captions",
        _paid,
        _captions_script,
        stubs=lambda s: [price_list(s.billing_url, {"captions_per_minute": 2, "translation_per_minute": 1})],
    ),
    Service("ingest", _ingest, _ingest_script),
    Service("streaming", _streaming, _streaming_script),
    Service("gateway", _gateway, _gateway_script, injects=()),
    Service(
        "render",
        _render,
        _render_script,
        stubs=lambda s: [
            _empty_library(s.ingest_url),
            price_list(s.billing_url, {"render_per_output_second": 1}),
        ],
    ),
]


def _pool_key() -> Any:
    from common.service import POOL

    return POOL


def _store_key() -> Any:
    from common.service import STORE

    return STORE


# -- the harness -------------------------------------------------------------------------------------------------


@pytest.fixture(params=SERVICES, ids=lambda s: s.name)
async def running(
    request: pytest.FixtureRequest,
    make_schema: Callable[..., Awaitable[str]],
    database_url: str,
    tmp_path: Path,
    token_factory: TokenFactory,
    fs_store: ObjectStore,
    memory_bus: Any,
    aiohttp_client: Any,
) -> tuple[Service, TestClient[web.Request, web.Application], list[Call]]:
    """The service's api app (on its own fresh schema) with every exchange recorded."""
    service: Service = request.param
    schema = await make_schema(service.name, ROOT / "services" / service.name / "migrations")
    app = _build(service, schema, tmp_path, database_url, fs_store, memory_bus, tokens=token_factory)
    calls: list[Call] = []

    @web.middleware
    async def record(
        req: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Any:
        resp = await handler(req)
        resource = req.match_info.route.resource
        body = resp.body if isinstance(resp, web.Response) and isinstance(resp.body, bytes) else None
        calls.append(
            Call(
                req.method, resource.canonical if resource else req.path, resp.status, resp.content_type, body
            )
        )
        return resp

    app.middlewares.insert(0, record)  # outermost: it sees problems as rendered
    client = await aiohttp_client(app)
    return service, client, calls


def _doc_path(canonical: str) -> str:
    return re.sub(r"\{([^}:]+)(:[^}]*)?\}", r"{\1}", canonical)


def _registered(app: web.Application) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD" or isinstance(resource, web.StaticResource):
            continue
        if resource.canonical in INFRA:
            continue
        out.add((route.method, _doc_path(resource.canonical)))
    return out


async def test_routes_and_document_agree(running: Any) -> None:
    service, client, _ = running
    app = client.app
    api = app[API]
    doc = await (await client.get("/openapi.json")).json()
    table = {(r.method, r.doc_path) for r in api.routes}
    documented = {
        (m.upper(), p) for p, item in doc["paths"].items() for m in item if isinstance(item[m], dict)
    }
    registered = _registered(app)
    assert registered == table, f"{service.name}: routes outside the route table: {registered ^ table}"
    hidden = {(r.method, r.doc_path) for r in api.routes if not r.documented}
    assert documented == table - hidden, (
        f"{service.name}: document and routes differ: {documented ^ (table - hidden)}"
    )


async def test_recorded_answers_validate_against_the_document(
    running: Any, token_factory: TokenFactory
) -> None:
    service, client, calls = running
    doc = await (await client.get("/openapi.json")).json()
    user, other = uuid.uuid4(), uuid.uuid4()
    session = Session(
        client, token_factory.headers(user), token_factory.headers(other), Path("."), {"user": str(user)}
    )
    calls.clear()
    await service.script(session)
    assert calls, "the script made no calls"
    called = {(c.method, _doc_path(c.route)) for c in calls}
    operations = {
        (m.upper(), p) for p, item in doc["paths"].items() for m in item if isinstance(item[m], dict)
    }
    assert operations <= called, f"{service.name}: the script leaves out {sorted(operations - called)}"
    components = doc["components"]
    for call in calls:
        op = doc["paths"][_doc_path(call.route)][call.method.lower()]
        assert call.status < 500, (service.name, call)
        spec = op["responses"].get(str(call.status))
        assert spec is not None, (
            f"{service.name} {call.method} {call.route}: status {call.status} is not documented"
        )
        content = spec.get("content")
        if content is None or call.body is None:
            continue
        media = content.get(call.content_type)
        assert media is not None, (
            f"{call.method} {call.route} {call.status}: {call.content_type} not documented"
        )
        schema = {**media["schema"], "components": components}
        jsonschema.validate(
            json.loads(call.body),
            schema,
            cls=jsonschema.Draft202012Validator,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )


def _fuzz(
    doc: dict[str, Any], base_url: str, headers: dict[str, str], *, examples: int, last: tuple[str, ...] = ()
) -> tuple[list[str], list[int]]:
    """Schemathesis over ``doc`` at ``base_url``: ``examples`` generated requests per operation and mode (valid,
    invalid), the operations on the paths in ``last`` after all others; the 5xx answers and every status seen."""
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    statuses: list[int] = []
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.path in last)
    for operation, mode in itertools.product(operations, GenerationMode):

        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
                )

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without inputs has nothing to get wrong
    return failures, statuses


async def test_schemathesis_finds_no_server_error(running: Any, token_factory: TokenFactory) -> None:
    _, client, _ = running
    doc = await (await client.get("/openapi.json")).json()
    base_url = str(client.make_url("")).rstrip("/")
    headers = token_factory.headers(uuid.uuid4())
    failures, statuses = await asyncio.to_thread(_fuzz, doc, base_url, headers, examples=EXAMPLES)
    assert not failures, "\n".join(failures[:20])
    assert len(statuses) >= len(doc["paths"]) * 2, "schemathesis sent requests (positive and negative)"
    assert any(400 <= s < 500 for s in statuses), sorted(set(statuses))
    if any(
        "{" not in path for path in doc["paths"]
    ):  # generated ids name nothing: only such paths can succeed
        assert any(s < 300 for s in statuses), sorted(set(statuses))


# -- the whole platform behind the gateway ---------------------------------------------------------------------

#: generated requests per operation and mode through the gateway (every service's operations at once)
PLATFORM_EXAMPLES = 6
#: what ends the session whose token the generated requests carry: fuzzed after everything else
SESSION_ENDERS = ("/api/v1/auth/logout",)


@dataclass(frozen=True)
class Platform:
    """The gateway in front of every service, all in this process on real HTTP ports; a registered user."""

    gateway_url: str
    auth: dict[str, str]


@pytest.fixture
async def whole_platform(
    make_schema: Callable[..., Awaitable[str]],
    database_url: str,
    tmp_path: Path,
    fs_store: ObjectStore,
    memory_bus: Any,
) -> AsyncIterator[Platform]:
    """Every service's api app on its own schema and port, one bus and store, the real gateway routing to them."""
    ports = {s.name: free_port() for s in SERVICES}
    url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    links: dict[str, Any] = {
        "jwks_url": f"{url['gateway']}/.well-known/jwks.json",
        "billing_url": url["billing"],
        "ingest_url": url["ingest"],
        "public_base_url": url["gateway"],
        **{f"upstream_{s.name}": url[s.name] for s in SERVICES if s.name != "gateway"},
        # thousands of requests from one user and address in a minute: this run is about answers, not limits
        **{f"rate_limit_{kind}": 1_000_000 for kind in ("default", "auth", "refresh", "play", "api_key")},
        "login_failures_per_account": 1_000_000,
        "login_failures_per_address": 1_000_000,
        "openapi_fetch_timeout_s": 5.0,
    }
    async with contextlib.AsyncExitStack() as stack:
        for service in SERVICES:  # the gateway last: it routes to the others
            schema = await make_schema(service.name, ROOT / "services" / service.name / "migrations")
            app = _build(service, schema, tmp_path, database_url, fs_store, memory_bus, links=links)
            await stack.enter_async_context(serving(app, port=ports[service.name]))
        async with aiohttp.ClientSession(url["gateway"]) as http:
            creds = {"email": f"u{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery"}
            async with http.post("/api/v1/auth/register", json=creds) as r:
                assert r.status == 201, await r.text()
            async with http.post("/api/v1/auth/login", json=creds) as r:
                assert r.status == 200, await r.text()
                token = (await r.json())["access_token"]
        yield Platform(url["gateway"], {"Authorization": f"Bearer {token}"})


async def test_schemathesis_through_the_gateway_finds_no_server_error(whole_platform: Platform) -> None:
    """The aggregated document, every operation sent through the gateway's proxy to the real service, as a
    registered user: no answer is a 5xx."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{whole_platform.gateway_url}/api/v1/openapi.json") as r:
            assert r.status == 200
            doc = await r.json()
        for own_or_proxied in ("/api/v1/me", "/api/v1/videos", "/api/v1/billing/balance"):
            # the generated requests are a signed-in user's, whom the services behind the gateway know too
            async with http.get(
                f"{whole_platform.gateway_url}{own_or_proxied}", headers=whole_platform.auth
            ) as r:
                assert r.status == 200, await r.text()
    assert "x-unavailable" not in doc or not doc["x-unavailable"], doc.get("x-unavailable")
    owners = {path.split("/")[3] for path in doc["paths"] if path.startswith("/api/v1/")}
    assert {"videos", "imports", "billing", "analyses", "rankings", "captions", "webhooks", "auth"} <= owners
    failures, statuses = await asyncio.to_thread(
        _fuzz,
        doc,
        whole_platform.gateway_url,
        whole_platform.auth,
        examples=PLATFORM_EXAMPLES,
        last=SESSION_ENDERS,
    )
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:20])
    assert len(statuses) >= len(doc["paths"]) * 2, "schemathesis sent requests (positive and negative)"
    assert any(s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses), sorted(set(statuses))


#: issue 14's hand-made requests that got a 500 ``internal.error``, each with the 4xx and code it gets now
_FORM = "multipart/form-data"
_PART = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nabc\r\n--x--\r\n'
_BAD = (422, "validation.invalid")
_DEEP = b'{"email": "a@b.c", "password": "x", "extra": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
MALFORMED: list[tuple[str, str, str | None, bytes | None, tuple[int, str]]] = [
    ("POST", "/api/v1/videos", _FORM, _PART, (400, "request.malformed_multipart")),  # no boundary
    ("POST", "/api/v1/videos", f"{_FORM}; boundary=y", _PART, (400, "request.malformed_multipart")),
    (
        "POST",
        "/api/v1/videos",
        f"{_FORM}; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="fi\x01le"\r\n\r\nabc\r\n--x--\r\n',
        (400, "request.malformed_multipart"),
    ),
    (
        "POST",
        "/api/v1/videos",
        f"{_FORM}; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="title"\r\n\r\na\x00b\r\n' + _PART[5:],
        (400, "request.invalid_characters"),
    ),
    *[
        ("POST", f"/api/v1/auth/{p}", "application/json", _DEEP, (400, "request.malformed_json"))
        for p in ("login", "register", "refresh")
    ],
    ("GET", "/api/v1/jobs?kind=a%00b", None, None, (400, "request.invalid_characters")),
    ("GET", "/api/v1/billing/topups/ord_%00x", None, None, (400, "request.invalid_characters")),
    (
        "POST",
        "/api/v1/imports",
        "application/json",
        b'{"url": "http://127.0.0.1:9/v.mp4", "title": "a\\u0000b"}',
        (400, "request.invalid_characters"),
    ),
    (
        "POST",
        "/api/v1/imports",
        "application/json",
        b'{"url": "http://127.0.0.1:9/v\\u0000.mp4"}',
        (400, "request.invalid_characters"),
    ),
    # URLs that start right but do not parse (the gateway's fuzz run found render answering 500 to the first)
    *[
        (
            "POST",
            "/api/v1/rankings",
            "application/json",
            b'{"title": "t", "source": {"urls": ["%s"]}}' % u,
            _BAD,
        )
        for u in (b"http://[", b"https://a:port/x")
    ],
    *[
        ("POST", "/api/v1/analyses", "application/json", b'{"url": "%s"}' % u, _BAD)
        for u in (b"http://[::1", b"http://a\\uff0fb/")
    ],
]


async def test_the_issues_malformed_requests_through_the_gateway_are_4xx_with_a_code(
    whole_platform: Platform,
) -> None:
    """Each request issue 14 made by hand, sent as it was (raw bytes, the path as typed) through the gateway."""
    answers = []
    async with aiohttp.ClientSession() as http:
        for method, path, content_type, body, _ in MALFORMED:
            headers = {**whole_platform.auth, **({"Content-Type": content_type} if content_type else {})}
            url = yarl.URL(f"{whole_platform.gateway_url}{path}", encoded=True)
            async with http.request(method, url, data=body, headers=headers) as r:
                problem = await r.json(content_type=None)
                answers.append((r.status, problem.get("code")))
    assert answers == [expected for *_, expected in MALFORMED]
