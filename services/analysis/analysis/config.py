"""Settings of the analysis service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings(ServiceSettings):
    """Analysis settings; every field is an environment variable of the same name upper-cased."""

    service: str = "analysis"
    http_port: int = registry.get("analysis").api_port
    worker_port: int = registry.get("analysis").worker_port or 0
