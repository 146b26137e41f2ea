"""Settings of the render service."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class RenderSettings(ServiceSettings):
    """Render settings; every field is an environment variable of the same name upper-cased."""

    service: str = "render"
    http_port: int = 8005
    worker_port: int = 9105
