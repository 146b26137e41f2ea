"""Wiring of playback and webhooks: the playback and webhook routes (api role), the webhook queue and sender
(worker role)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from common.bus import Router
from common.service import BUS, POOL, ROLE, settings_of
from common.settings import SettingsError

from .config import StreamingSettings
from .play_api import PLAYBACK_KEYS
from .playback import KeyConfigError, PlaybackKeys
from .webhook_sender import WebhookSender, queue_deliveries
from .webhooks import BUS_EVENTS, RetryPolicy

DEV_PLAYBACK_KEY = StreamingSettings().playback_keys[0]
SENDER: web.AppKey[WebhookSender] = web.AppKey("webhook_sender", WebhookSender)
WEBHOOK_CONSUMER = "streaming.webhooks"


def playback_keys(settings: StreamingSettings) -> PlaybackKeys:
    """The playback keys from settings; refuses the built-in development key in production."""
    if settings.environment == "production" and DEV_PLAYBACK_KEY in settings.playback_keys:
        raise SettingsError("PLAYBACK_KEYS: set your own secret(s) in production (the default is public)")
    try:
        return PlaybackKeys.parse(settings.playback_keys)
    except KeyConfigError as e:
        raise SettingsError(str(e)) from e


def webhook_queue(settings: StreamingSettings) -> str:
    """The webhooks' own queue, decoupled from transcoding."""
    return f"{settings.queue}.webhooks"


def webhook_router(sender: WebhookSender) -> Router:
    """The webhook queue's routes: each stream event queues its deliveries (inbox), then wakes the sender
    (committed: send now rather than at the next poll)."""
    r = Router(consumer=WEBHOOK_CONSUMER)
    for event_type in BUS_EVENTS:
        r.add(event_type, queue_deliveries, after=lambda _: sender.wake())
    return r


def sender_for(app: web.Application) -> WebhookSender:
    """A webhook sender configured from the app's settings."""
    s = settings_of(app, StreamingSettings)
    return WebhookSender(
        app[POOL],
        policy=RetryPolicy(
            base_s=s.webhook_retry_base_s,
            max_delay_s=s.webhook_retry_max_delay_s,
            window_s=s.webhook_retry_window_s,
        ),
        timeout_s=s.webhook_timeout_s,
        allow_private=s.webhook_allow_private,
        interval_s=s.webhook_dispatch_interval_s,
        batch=s.webhook_dispatch_batch,
        disable_after_s=s.webhook_disable_after_s,
        disable_after_failures=s.webhook_disable_after_failures,
        retention_s=s.webhook_log_retention_s,
    )


async def _webhook_worker(app: web.Application) -> AsyncIterator[None]:
    sender = sender_for(app)
    app[SENDER] = sender
    await sender.start()
    await webhook_router(sender).subscribe(
        app[BUS], queue=webhook_queue(settings_of(app, StreamingSettings)), pool=app[POOL]
    )
    yield
    await sender.stop()


def add_playback_and_webhooks(app: web.Application) -> None:
    """Add playback and webhooks to a streaming app built by ``build_app`` (playback keys; worker loops by role)."""
    settings = settings_of(app, StreamingSettings)
    if settings.playback_delivery not in ("proxy", "redirect"):
        raise SettingsError(
            f"PLAYBACK_DELIVERY must be proxy or redirect, not {settings.playback_delivery!r}"
        )
    app[PLAYBACK_KEYS] = playback_keys(settings)
    if app[ROLE] == "worker":
        app.cleanup_ctx.append(_webhook_worker)
