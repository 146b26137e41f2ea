"""HTTP: ``/api/v1/webhooks`` — register (secret shown once), list, delete, re-enable, and the delivery log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from urllib.parse import urlsplit

import msgspec
from aiohttp import web

from common.addresses import UnresolvableHost, ip_literal, is_forbidden, resolve
from common.auth import require_user
from common.http import Problem, json_response, parse_uuid, read_json
from common.service import POOL

from . import webhook_store as dstore
from .play_api import streaming_settings
from .webhooks import WebhookError, check_url, new_secret, validate_events


class CreateWebhook(msgspec.Struct, forbid_unknown_fields=True):
    """Body of ``POST /webhooks``."""

    url: str
    events: list[str]


async def _resolves_publicly(host: str) -> None:
    """Refuse a host name whose addresses are all non-public (checked again at every send)."""
    if ip_literal(host) is not None:
        return
    try:
        addresses = await asyncio.wait_for(resolve(host), timeout=5)
    except (UnresolvableHost, OSError, TimeoutError) as e:
        raise WebhookError("webhook.unresolvable_host", f"{host} does not resolve") from e
    if all(is_forbidden(a) for a in addresses):
        raise WebhookError("webhook.forbidden_address", f"{host} resolves only to non-public addresses")


async def create_webhook(request: web.Request) -> web.Response:
    """Register an endpoint; the answer carries its signing secret, which is never shown again."""
    principal = await require_user(request)
    body = await read_json(request, CreateWebhook)
    settings = streaming_settings(request.app)
    try:
        url = check_url(body.url, allow_private=settings.webhook_allow_private)
        events = validate_events(body.events)
        if not settings.webhook_allow_private:
            await _resolves_publicly(urlsplit(url).hostname or "")
    except WebhookError as e:
        raise Problem(422, e.code, e.message) from e
    secret = new_secret()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if (
            await dstore.count_webhooks(conn, owner_id=principal.user_id, lock=True)
            >= settings.webhook_max_per_user
        ):
            raise Problem(
                409, "webhook.limit_reached", f"at most {settings.webhook_max_per_user} endpoints per account"
            )
        hook = await dstore.create_webhook(
            conn, webhook_id=uuid.uuid4(), owner_id=principal.user_id, url=url, events=events, secret=secret
        )
    resp: web.Response = json_response(
        {**hook.public(), "secret": secret},
        status=201,
        headers={"Location": f"/api/v1/webhooks/{hook.id}", "Cache-Control": "no-store"},
    )
    return resp


async def list_webhooks(request: web.Request) -> web.Response:
    """The caller's endpoints (without secrets), with whether each is enabled and why not."""
    principal = await require_user(request)
    async with request.app[POOL].acquire() as conn:
        hooks = await dstore.list_webhooks(conn, owner_id=principal.user_id)
    resp: web.Response = json_response({"items": [h.public() for h in hooks]})
    return resp


async def _owned(request: web.Request) -> tuple[uuid.UUID, uuid.UUID]:
    principal = await require_user(request)
    return principal.user_id, parse_uuid(request.match_info["webhook_id"], what="webhook")


async def get_webhook(request: web.Request) -> web.Response:
    """One endpoint of the caller."""
    owner_id, webhook_id = await _owned(request)
    async with request.app[POOL].acquire() as conn:
        hook = await dstore.get_webhook(conn, webhook_id=webhook_id, owner_id=owner_id)
    if hook is None:
        raise Problem(404, "webhook.not_found", "no such webhook")
    resp: web.Response = json_response(hook.public())
    return resp


async def delete_webhook(request: web.Request) -> web.Response:
    """Delete an endpoint (pending deliveries go with it)."""
    owner_id, webhook_id = await _owned(request)
    async with request.app[POOL].acquire() as conn:
        deleted = await dstore.delete_webhook(conn, webhook_id=webhook_id, owner_id=owner_id)
    if not deleted:
        raise Problem(404, "webhook.not_found", "no such webhook")
    return web.Response(status=204)


async def enable_webhook(request: web.Request) -> web.Response:
    """Re-enable an endpoint that was disabled for failing (new events are delivered again)."""
    owner_id, webhook_id = await _owned(request)
    async with request.app[POOL].acquire() as conn:
        hook = await dstore.enable_webhook(conn, webhook_id=webhook_id, owner_id=owner_id)
    if hook is None:
        raise Problem(404, "webhook.not_found", "no such webhook")
    resp: web.Response = json_response(hook.public())
    return resp


async def list_deliveries(request: web.Request) -> web.Response:
    """An endpoint's deliveries, newest first: every attempt with status code, latency, error and next retry."""
    owner_id, webhook_id = await _owned(request)
    try:
        limit = max(1, min(200, int(request.query.get("limit", "50"))))
        before_raw = request.query.get("before")
        before = datetime.fromisoformat(before_raw) if before_raw else None
    except ValueError as e:
        raise Problem(400, "request.bad_query", "limit must be an integer, before an ISO 8601 time") from e
    async with request.app[POOL].acquire() as conn:
        if await dstore.get_webhook(conn, webhook_id=webhook_id, owner_id=owner_id) is None:
            raise Problem(404, "webhook.not_found", "no such webhook")
        deliveries = await dstore.list_deliveries(conn, webhook_id=webhook_id, limit=limit, before=before)
    items = [d.public() for d in deliveries]
    next_before = deliveries[-1].created_at.isoformat() if len(deliveries) == limit else None
    resp: web.Response = json_response({"items": items, "next_before": next_before})
    return resp


def add_webhook_routes(app: web.Application) -> None:
    """Register the webhook routes on ``app``."""
    app.router.add_post("/api/v1/webhooks", create_webhook)
    app.router.add_get("/api/v1/webhooks", list_webhooks)
    app.router.add_get("/api/v1/webhooks/{webhook_id}", get_webhook)
    app.router.add_delete("/api/v1/webhooks/{webhook_id}", delete_webhook)
    app.router.add_post("/api/v1/webhooks/{webhook_id}/enable", enable_webhook)
    app.router.add_get("/api/v1/webhooks/{webhook_id}/deliveries", list_deliveries)
