"""Settings of the analysis service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import GeminiSettings, ServiceSettings


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings(ServiceSettings, GeminiSettings):
    """Analysis settings; every field is an environment variable of the same name upper-cased."""

    service: str = "analysis"
    http_port: int = registry.get("analysis").api_port
    worker_port: int = registry.get("analysis").worker_port or 0
    job_concurrency: int = 8  # single analyses and batch chunks at once per worker (mostly waiting on I/O)
    # a chunk that meets an unexpected error (Postgres restarting, out of connections) is retried after these,
    # its items that had not ended taken up again; only then does it fail
    job_retry_delays_s: tuple[str, ...] = ("2", "10", "30", "60")
    job_max_attempts: int = 8
    # Gemini (GeminiSettings: key, base URL, model, timeout). No key: the offline extractive engine.
    gemini_prompt_version: str = "analysis-v1"
    # the quota of one (API key, model), shared by every worker through Redis (REDIS_URL)
    gemini_requests_per_minute: int = 1000
    gemini_tokens_per_minute: int = 1_000_000
    gemini_requests_per_day: int = 10_000
    gemini_quota_window_s: float = 60.0
    gemini_quota_prefix: str = "analysis:quota"  # Redis keys of the shared limiter
    redis_max_connections: int = 32  # per process; a request beyond waits for a free one ...
    redis_pool_timeout_s: float = 30.0  # ... this long, then fails (the item's chunk is retried)
    gemini_retry_attempts: int = 5
    gemini_retry_base_s: float = 1.0
    gemini_retry_max_s: float = 60.0
    # platform subtitles through yt-dlp (no video download)
    subtitle_languages: tuple[str, ...] = ("en", "ko")  # preferred when a video offers several
    subtitle_socket_timeout_s: float = 20.0
    subtitle_threads: int = 16  # pages read at once per worker process
    subtitle_proxy: str = ""
    import_allow_private: bool = False  # URLs on private addresses (tests, a LAN)
    subtitle_backoff_s: tuple[str, ...] = (
        "2",
        "10",
        "30",
    )  # a rate-limited platform is asked again after these
    # a transcript another service makes for us (an import by ingest, speech-to-text by captions)
    request_wait_s: float = 3 * 3600.0
    request_poll_s: float = 1.0
    # batches
    batch_max_items: int = 10_000
    batch_chunk_size: int = 100  # items per paid chunk job (one credit hold each)
    batch_item_concurrency: int = 24  # items of one chunk in flight at once
    # a URL analysed before (same engine, model, prompt version, options) whose page was read less than this long
    # ago is answered from the content cache without reading the page again; 0: every analysis reads its page
    page_memo_ttl_s: float = 24 * 3600.0
    price_cache_s: float = 60.0  # billing's price list is read at most this often
    hold_ttl_s: int = 24 * 3600  # a queued batch may wait this long before its holds lapse
