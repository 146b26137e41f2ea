"""Settings of the ingest service."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class IngestSettings(ServiceSettings):
    """Ingest settings; every field is an environment variable of the same name upper-cased."""

    service: str = "ingest"
    http_port: int = 8001
