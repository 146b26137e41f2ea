"""Settings of the streaming service."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class StreamingSettings(ServiceSettings):
    """Streaming settings; every field is an environment variable of the same name upper-cased."""

    service: str = "streaming"
    http_port: int = 8002
