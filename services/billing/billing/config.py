"""Settings of the billing service."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class BillingSettings(ServiceSettings):
    """Billing settings; every field is an environment variable of the same name upper-cased."""

    service: str = "billing"
    http_port: int = 8006
