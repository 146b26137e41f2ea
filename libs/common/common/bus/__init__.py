"""The message bus: a port with RabbitMQ and in-memory adapters."""

from .base import Bus, Delivery, Handler, PermanentError, topic_matches
from .memory import MemoryBus
from .router import PlainHandler, Router, TxHandler

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


def create_bus(settings: object) -> Bus:
    """The RabbitMQ bus for ``settings`` (``amqp_url``), or the memory bus when ``amqp_url`` is ``memory://``."""
    from ..settings import ServiceSettings

    assert isinstance(settings, ServiceSettings)
    if settings.amqp_url.startswith("memory://"):
        return MemoryBus(service=settings.service)
    from .rabbit import RabbitBus

    return RabbitBus.from_settings(settings)
