"""Settings of the captions service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class CaptionsSettings(ServiceSettings):
    """Captions settings; every field is an environment variable of the same name upper-cased."""

    service: str = "captions"
    http_port: int = registry.get("captions").api_port
    worker_port: int = registry.get("captions").worker_port or 0
