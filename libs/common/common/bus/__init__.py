"""The message bus: a port with RabbitMQ and in-memory adapters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Bus, Delivery, Handler, PermanentError, topic_matches
from .memory import MemoryBus
from .router import PlainHandler, Router, TxHandler

if TYPE_CHECKING:
    from ..settings import ServiceSettings

__all__ = [
    "Bus",
    "Delivery",
    "Handler",
    "MemoryBus",
    "PermanentError",
    "PlainHandler",
    "Router",
    "TxHandler",
    "create_bus",
    "topic_matches",
]


def create_bus(settings: ServiceSettings) -> Bus:
    """The RabbitMQ bus for ``settings`` (``amqp_url``), or the memory bus when ``amqp_url`` is ``memory://``."""
    if settings.amqp_url.startswith("memory://"):
        return MemoryBus(service=settings.service)
    from .rabbit import RabbitBus

    return RabbitBus.from_settings(settings)
