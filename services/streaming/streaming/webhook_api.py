"""HTTP: ``/api/v1/webhooks`` — register (secret shown once), list, delete, re-enable, and the delivery log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web

from common.addresses import UnresolvableHost, ip_literal, is_forbidden, resolve
from common.auth import require_user
from common.errors import NotFound
from common.http import Problem, json_response, parse_uuid, read_json
from common.pagination import Paging, page_of, page_request
from common.service import POOL, settings_of

from . import webhook_store as dstore
from .config import StreamingSettings
from .models import DeliveryView, StreamingCode, WebhookCreate, WebhookCreatedView, WebhookList, WebhookView
from .webhook_store import WebhookRecord
from .webhooks import WebhookError, check_url, new_secret, validate_events

DELIVERY_PAGING = Paging(default=50, maximum=200)
#: the keyset position of a page of deliveries: the last one's (created_at, id)
DeliveryKey = tuple[datetime, uuid.UUID]


async def _resolves_publicly(host: str) -> None:
    """Refuse a host name whose addresses are all non-public (checked again at every send)."""
    if ip_literal(host) is not None:
        return
    try:
        addresses = await asyncio.wait_for(resolve(host), timeout=5)
    except (UnresolvableHost, OSError, TimeoutError) as e:
        raise WebhookError(StreamingCode.WEBHOOK_UNRESOLVABLE_HOST, f"{host} does not resolve") from e
    if all(is_forbidden(a) for a in addresses):
        raise WebhookError(
            StreamingCode.WEBHOOK_FORBIDDEN_ADDRESS, f"{host} resolves only to non-public addresses"
        )


async def create_webhook(request: web.Request) -> web.Response:
    """Register an endpoint; the response carries its signing secret, shown only once."""
    principal = await require_user(request)
    body = await read_json(request, WebhookCreate)
    settings = settings_of(request, StreamingSettings)
    url = check_url(body.url, allow_private=settings.webhook_allow_private)
    events = validate_events(body.events)
    if not settings.webhook_allow_private:
        await _resolves_publicly(urlsplit(url).hostname or "")
    secret = new_secret()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        if (
            await dstore.count_webhooks(conn, owner_id=principal.user_id, lock=True)
            >= settings.webhook_max_per_user
        ):
            raise Problem(
                409,
                StreamingCode.WEBHOOK_LIMIT_REACHED,
                f"at most {settings.webhook_max_per_user} endpoints per account",
            )
        hook = await dstore.create_webhook(
            conn, webhook_id=uuid.uuid4(), owner_id=principal.user_id, url=url, events=events, secret=secret
        )
    return json_response(
        WebhookCreatedView.created(hook, secret),
        status=201,
        headers={"Location": f"/api/v1/webhooks/{hook.id}", "Cache-Control": "no-store"},
    )


async def list_webhooks(request: web.Request) -> web.Response:
    """The caller's endpoints (without secrets), with whether each is enabled and why not."""
    principal = await require_user(request)
    async with request.app[POOL].acquire() as conn:
        hooks = await dstore.list_webhooks(conn, owner_id=principal.user_id)
    return json_response(WebhookList(items=[WebhookView.of(h) for h in hooks]))


async def _owned(request: web.Request) -> tuple[uuid.UUID, uuid.UUID]:
    principal = await require_user(request)
    return principal.user_id, parse_uuid(request.match_info["webhook_id"], what="webhook")


async def _owned_view(
    request: web.Request, act: Callable[..., Awaitable[WebhookRecord | None]]
) -> web.Response:
    """The view of one of the caller's endpoints after ``act`` (a store function) on it; 404 when it has none."""
    owner_id, webhook_id = await _owned(request)
    async with request.app[POOL].acquire() as conn:
        hook = await act(conn, webhook_id=webhook_id, owner_id=owner_id)
    if hook is None:
        raise NotFound("webhook")
    return json_response(WebhookView.of(hook))


async def get_webhook(request: web.Request) -> web.Response:
    """One of the caller's endpoints."""
    return await _owned_view(request, dstore.get_webhook)


async def delete_webhook(request: web.Request) -> web.Response:
    """Delete an endpoint (its pending deliveries stop)."""
    owner_id, webhook_id = await _owned(request)
    async with request.app[POOL].acquire() as conn:
        deleted = await dstore.delete_webhook(conn, webhook_id=webhook_id, owner_id=owner_id)
    if not deleted:
        raise NotFound("webhook")
    return web.Response(status=204)


async def enable_webhook(request: web.Request) -> web.Response:
    """Re-enable an endpoint that was disabled for failing (new events are delivered again)."""
    return await _owned_view(request, dstore.enable_webhook)


async def list_deliveries(request: web.Request) -> web.Response:
    """An endpoint's deliveries, newest first, each with every attempt (status code, latency, error, next retry)."""
    owner_id, webhook_id = await _owned(request)
    page = page_request(request, DELIVERY_PAGING, DeliveryKey)
    async with request.app[POOL].acquire() as conn:
        if await dstore.get_webhook(conn, webhook_id=webhook_id, owner_id=owner_id) is None:
            raise NotFound("webhook")
        deliveries = await dstore.list_deliveries(
            conn, webhook_id=webhook_id, limit=page.limit + 1, before=page.after
        )
    return json_response(page_of(deliveries, page, key=lambda d: (d.created_at, d.id), view=DeliveryView.of))


async def redeliver(request: web.Request) -> web.Response:
    """Send one of an endpoint's finished deliveries again (the same event id and body, freshly signed)."""
    owner_id, webhook_id = await _owned(request)
    delivery_id = parse_uuid(request.match_info["delivery_id"], what="webhook_delivery")
    async with request.app[POOL].acquire() as conn, conn.transaction():
        hook = await dstore.get_webhook(conn, webhook_id=webhook_id, owner_id=owner_id)
        if hook is None:
            raise NotFound("webhook")
        if not hook.enabled:
            raise Problem(
                409, StreamingCode.WEBHOOK_DISABLED, "the endpoint is disabled: enable it before redelivering"
            )
        delivery = await dstore.redeliver(conn, delivery_id=delivery_id, webhook_id=webhook_id)
    if isinstance(delivery, str):  # why not
        if delivery == "pending":
            raise Problem(
                409, StreamingCode.DELIVERY_PENDING, "the delivery is already waiting for its next attempt"
            )
        raise NotFound("webhook_delivery")
    return json_response(DeliveryView.of(delivery), status=202)
