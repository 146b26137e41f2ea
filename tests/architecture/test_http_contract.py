"""Every service's HTTP contract, one test for all: routes and OpenAPI document agree, real answers match it.

For each service in ``SERVICES`` (its api app on a fresh schema, real Postgres, the filesystem store):

- every registered route is in its route table and documented (or marked ``documented=False``), and every documented
  operation is routed;
- a short scripted session (the calls a client makes, good and bad) is recorded, every operation of the document is
  called at least once, and every recorded answer is documented for its status and validates against its schema;
- schemathesis sends generated requests (a bounded number per operation) and no answer is a 5xx.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema
import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient
from schemathesis import GenerationMode

from common.openapi import API
from common.storage import ObjectStore
from common.testing.auth import TokenFactory
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


@dataclass(frozen=True)
class Service:
    """How to start one service's api app for these tests, and what a client does with it."""

    name: str
    build: Callable[[str, Path, str, TokenFactory, ObjectStore, Any], web.Application]
    script: Script


# -- the services ------------------------------------------------------------------------------------------------


def _billing(
    schema: str, tmp: Path, db: str, tokens: TokenFactory, store: ObjectStore, bus: Any
) -> web.Application:
    from billing.app import create_app
    from billing.config import BillingSettings

    settings = BillingSettings(
        database_url=db,
        db_schema=schema,
        payment_webhook_secret="whsec_contract_0123456789",
        log_format="console",
    )
    return create_app(settings, role="api", bus=bus, verifier=tokens.verifier())


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


def _ingest(
    schema: str, tmp: Path, db: str, tokens: TokenFactory, store: ObjectStore, bus: Any
) -> web.Application:
    from ingest.app import create_app
    from ingest.config import IngestSettings

    settings = IngestSettings(
        database_url=db,
        db_schema=schema,
        tmp_dir=str(tmp / "tmp"),
        log_format="console",
        import_allow_private=True,
    )
    return create_app(settings, role="api", bus=bus, store=store, verifier=tokens.verifier())


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


def _streaming(
    schema: str, tmp: Path, db: str, tokens: TokenFactory, store: ObjectStore, bus: Any
) -> web.Application:
    from streaming.app import create_app
    from streaming.config import StreamingSettings

    settings = StreamingSettings(
        database_url=db,
        db_schema=schema,
        public_base_url="http://play.example.test",
        webhook_allow_private=True,  # generated URLs must not send these tests to DNS
        log_format="console",
    )
    return create_app(settings, role="api", bus=bus, store=store, verifier=tokens.verifier())


async def _streaming_script(s: Session) -> None:
    from streaming import store as media_store

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
    await c.get(f"/api/v1/webhooks/{hook['id']}", headers=s.auth)
    await c.post(f"/api/v1/webhooks/{hook['id']}/enable", headers=s.auth)
    await c.get(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=5", headers=s.auth)
    await c.get(f"/api/v1/webhooks/{hook['id']}/deliveries?limit=500", headers=s.auth)
    await c.delete(f"/api/v1/webhooks/{hook['id']}", headers=s.auth)
    await c.get(f"/api/v1/webhooks/{hook['id']}", headers=s.auth)


def _gateway(
    schema: str, tmp: Path, db: str, tokens: TokenFactory, store: ObjectStore, bus: Any
) -> web.Application:
    from gateway.app import create_app
    from gateway.config import GatewaySettings
    from gateway.keys import generate_key

    generate_key(tmp / "keys")
    settings = GatewaySettings(
        database_url=db,
        db_schema=schema,
        gateway_keys_dir=str(tmp / "keys"),
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        rate_limiter="memory",
        openapi_fetch_timeout_s=0.2,
        log_level="WARNING",
    )
    return create_app(settings, role="api", bus=bus)


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
    await c.get("/.well-known/jwks.json")
    await c.get("/api/v1/openapi.json")
    await c.post("/api/v1/auth/logout", json={"refresh_token": fresh["refresh_token"]}, headers=auth)
    await c.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})  # reused: refused


def _captions(
    schema: str, tmp: Path, db: str, tokens: TokenFactory, store: ObjectStore, bus: Any
) -> web.Application:
    from captions.app import create_app
    from captions.config import CaptionsSettings

    settings = CaptionsSettings(
        database_url=db, db_schema=schema, billing_url=f"http://127.0.0.1:{free_port()}", log_format="console"
    )
    app = create_app(settings, role="api", bus=bus, store=store, verifier=tokens.verifier())
    app.cleanup_ctx.insert(0, _price_list(settings.billing_url))
    return app


def _price_list(url: str) -> Callable[[web.Application], Any]:
    """Billing's price list, served for the app's lifetime by a real HTTP server where its settings look."""

    async def ctx(app: web.Application) -> Any:
        prices = web.Application()
        body = {"prices": {"captions_per_minute": 2, "translation_per_minute": 1}}
        prices.router.add_get("/api/v1/billing/prices", lambda _: web.json_response(body))
        runner = web.AppRunner(prices)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(url.rsplit(":", 1)[1])).start()
        yield
        await runner.cleanup()

    return ctx


async def _captions_script(s: Session) -> None:
    from captions import store as captions_store
    from captions.models import TrackKind
    from common.db import transaction

    c = s.client
    vid, owner = uuid.uuid4(), uuid.UUID(s.ids["user"])
    async with transaction(c.app[_pool_key()]) as conn:
        await captions_store.upsert_video(
            conn,
            video_id=vid,
            owner_id=owner,
            storage_key="originals/x/a.mp4",
            duration_s=30.0,
            fps=25.0,
            audio_codec="aac",
        )
        track = await captions_store.put_track(
            conn,
            video_id=vid,
            owner_id=owner,
            job_id=None,
            language="en",
            label="English",
            kind=TrackKind.TRANSCRIBED,
            cues=[{"id": "c1", "start_ms": 0, "end_ms": 2000, "lines": ["Hi."]}],
            quality={},
            keys=("captions/x/en.vtt", "captions/x/en.srt", "captions/x/en.json"),
        )
    await c.app[_store_key()].put("captions/x/en.vtt", b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHi.\n")
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
    cue = {"id": "c1", "start": 0.0, "end": 2.0, "text": "Hello."}
    await c.put(f"/api/v1/captions/{track.id}/cues", json={"cues": [cue], "base_version": 1}, headers=s.auth)
    await c.put(f"/api/v1/captions/{track.id}/cues", json={"cues": [cue], "base_version": 1}, headers=s.auth)
    bad = {**cue, "end": 0.1}
    await c.put(f"/api/v1/captions/{track.id}/cues", json={"cues": [bad]}, headers=s.auth)
    await c.delete(f"/api/v1/captions/{track.id}", headers=s.auth)
    await c.delete(f"/api/v1/captions/{track.id}", headers=s.auth)


SERVICES = [
    Service("billing", _billing, _billing_script),
    Service("captions", _captions, _captions_script),
    Service("ingest", _ingest, _ingest_script),
    Service("streaming", _streaming, _streaming_script),
    Service("gateway", _gateway, _gateway_script),
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
    app = service.build(schema, tmp_path, database_url, token_factory, fs_store, memory_bus)
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


async def test_schemathesis_finds_no_server_error(running: Any, token_factory: TokenFactory) -> None:
    _, client, _ = running
    doc = await (await client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(doc)
    base_url = str(client.make_url("")).rstrip("/")
    headers = token_factory.headers(uuid.uuid4())
    failures: list[str] = []
    statuses: list[int] = []

    def fuzz() -> None:
        for result, mode in itertools.product(schema.get_all_operations(), GenerationMode):
            operation = result.ok()

            @hypothesis.settings(
                max_examples=EXAMPLES,
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

    await asyncio.to_thread(fuzz)
    assert not failures, "\n".join(failures[:20])
    assert len(statuses) >= len(doc["paths"]) * 2, "schemathesis sent requests (positive and negative)"
    assert any(400 <= s < 500 for s in statuses), sorted(set(statuses))
    if any(
        "{" not in path for path in doc["paths"]
    ):  # generated ids name nothing: only such paths can succeed
        assert any(s < 300 for s in statuses), sorted(set(statuses))
