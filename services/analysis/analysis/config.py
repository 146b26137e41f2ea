"""Settings of the analysis service."""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings(ServiceSettings):
    """Analysis settings; every field is an environment variable of the same name upper-cased."""

    service: str = "analysis"
    http_port: int = 8004
    worker_port: int = 9104
