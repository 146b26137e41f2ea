"""Settings of the streaming service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import ServiceSettings


@dataclass(frozen=True, kw_only=True)
class StreamingSettings(ServiceSettings):
    """Streaming settings; every field is an environment variable of the same name upper-cased."""

    service: str = "streaming"
    http_port: int = registry.get("streaming").api_port
    worker_port: int = registry.get("streaming").worker_port or 0
    # media pipeline (transcoding worker)
    streaming_dash: bool = False  # also package a DASH presentation (manifest.mpd + dash/)
    streaming_copy_first: bool = True  # a stream-copy `src` rendition when the source allows it
    streaming_x264_preset: str = "veryfast"
    streaming_gop_s: float = 2.0
    streaming_max_short_side: int = 1080  # top rung of the ladder (short side, so 9:16 tops at 1080x1920)
    streaming_max_fps: float = 60.0
    streaming_concurrency: int = 1  # transcodes at once per worker process (each uses every core)
    # a source that cannot be stream-copied gets its lowest rung (+ audio) in a first pass, so it is playable
    # long before the ladder is complete (one extra decode; docs/streaming.md "Progressive publish")
    streaming_early_rung: bool = True
    # transcode jobs run under a lease (common.jobrunner; JOB_LEASE_S, JOB_MAX_ATTEMPTS, ... are common settings)
    job_poll_interval_s: float = 2.0
    job_retry_delays_s: tuple[str, ...] = ("5", "30")  # back-off before retrying a storage/database error
    streaming_work_dir: str = ""  # local scratch for transcodes (default: tmp_dir)
    # -- delivery: playback tokens, /play, webhooks (docs/streaming.md "Delivery") --
    public_base_url: str = "http://127.0.0.1:8080"  # where players reach /play (the gateway)
    # kid:secret,kid2:secret2 — the first signs, all verify; the default is public (refused in production)
    playback_keys: tuple[str, ...] = ("dev:reelforge-insecure-dev-playback-key",)
    playback_token_ttl_s: int = 3600
    playback_token_min_ttl_s: int = 60
    playback_token_max_ttl_s: int = 86400
    playback_delivery: str = "proxy"  # proxy | redirect (302 to a presigned URL when the store can presign)
    playback_presign_ttl_s: int = 300
    webhook_allow_private: bool = False  # allow loopback/private/link-local webhook targets (dev, tests)
    webhook_timeout_s: float = 10.0
    webhook_retry_base_s: float = 30.0
    webhook_retry_max_delay_s: float = 6 * 3600.0
    webhook_retry_window_s: float = 3 * 86400.0  # keep retrying a delivery this long after its event
    webhook_disable_after_s: float = 3 * 86400.0  # an endpoint failing continuously this long is disabled
    webhook_disable_after_failures: int = 0  # ... or after this many consecutive failed attempts (0 = off)
    webhook_dispatch_interval_s: float = 1.0
    webhook_dispatch_batch: int = 16
    webhook_max_per_user: int = 20
    webhook_log_retention_s: float = 30 * 86400.0  # finished deliveries are kept this long
