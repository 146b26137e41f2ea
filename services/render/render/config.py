"""Settings of the render service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import ScratchSettings, ServiceSettings

#: the development default of DOWNLOAD_SECRET; refused in production
DEV_DOWNLOAD_SECRET = "reelforge-insecure-dev-render-download-secret"


@dataclass(frozen=True, kw_only=True)
class RenderSettings(ServiceSettings, ScratchSettings):
    """Render settings; every field is an environment variable of the same name upper-cased."""

    service: str = "render"
    http_port: int = registry.get("render").api_port
    worker_port: int = registry.get("render").worker_port or 0
    # where the API reads a caller's searches and videos (ingest's HTTP API, with the caller's own token)
    ingest_url: str = registry.get("ingest").local_url
    ingest_timeout_s: float = 10.0
    hold_ttl_s: int = (
        6 * 3600
    )  # a render may wait this long for its sources and a worker before its hold lapses
    # a render waits this long for its clips' imports (ingest's answers) before failing source.unavailable
    source_wait_s: float = 1800.0
    source_poll_s: float = 1.0
    # signed download links (HMAC-SHA256, common.signing)
    download_secret: str = DEV_DOWNLOAD_SECRET
    download_ttl_s: int = 900
    # scratch_dir (<TMP_DIR>/render): one directory per running render, removed when it ends; the sweep removes a
    # killed worker's (ScratchSettings)
    tmp_max_age_s: float = 6 * 3600.0
    # fault injection for crash tests only: sleep after storing a render's output, before its final transaction
    fault_pause_after_output_s: float = 0.0
