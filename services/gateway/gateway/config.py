"""Settings of the gateway service."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class GatewaySettings(ServiceSettings):
    """Gateway settings; every field is an environment variable of the same name upper-cased."""

    service: str = "gateway"
    http_port: int = 8080
