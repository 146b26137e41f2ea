"""Settings of the ingest service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import ScratchSettings, ServiceSettings

GIB = 1024 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class IngestSettings(ServiceSettings, ScratchSettings):
    """Ingest settings; every field is an environment variable of the same name upper-cased.

    Temporary files (uploads, imports) live in ``scratch_dir``, ``<TMP_DIR>/ingest`` (``ScratchSettings``).
    """

    service: str = "ingest"
    http_port: int = registry.get("ingest").api_port
    #: the worker role serves /healthz, /readyz and /metrics here (``python -m ingest worker``)
    worker_port: int = registry.get("ingest").worker_port or 0

    # media limits, applied to every original whatever its source
    max_upload_bytes: int = 2 * GIB
    max_duration_s: float = 4 * 3600.0
    max_dimension: int = 8192
    min_dimension: int = 16

    # URL imports (yt-dlp)
    import_max_bytes: int = 2 * GIB
    #: production default False: loopback/private/link-local targets are refused
    import_allow_private: bool = False
    #: exact ``host:port`` pairs admitted even when they resolve to an internal address (tests, ``make up``)
    import_allowed_hosts: tuple[str, ...] = ()
    import_socket_timeout_s: float = 30.0
    #: format selection: best <=1080p MP4-compatible (merging needs ffmpeg; see docs/ingest.md)
    import_format: str = "bv*[height<=1080][ext=mp4]+ba[ext=m4a]/b[height<=1080][ext=mp4]/b[height<=1080]/b"

    # the job runner (imports and searches) in the worker role; the other JOB_* settings are common ones
    job_concurrency: int = 2

    # originals: an intent older than this without its video is a crash's leftover, deleted by the sweep
    originals_orphan_age_s: float = 3600.0
    originals_sweep_interval_s: float = 300.0
    #: fault injection for crash tests only: wait this long after storing an original, before registering it
    fault_pause_after_original_s: float = 0.0
