"""Settings of the captions service."""

from __future__ import annotations

from dataclasses import dataclass

from common import registry
from common.settings import GeminiSettings, ServiceSettings


@dataclass(frozen=True, kw_only=True)
class CaptionsSettings(ServiceSettings, GeminiSettings):
    """Captions settings; every field is an environment variable of the same name upper-cased."""

    service: str = "captions"
    http_port: int = registry.get("captions").api_port
    worker_port: int = registry.get("captions").worker_port or 0
    # speech-to-text (faster-whisper). Empty path: the pinned PyPI `base` model, assembled into the cache dir.
    whisper_model_path: str = ""
    whisper_cache_dir: str = "./var/cache/whisper"
    whisper_compute_type: str = "int8"
    whisper_threads: int = 2
    whisper_beam_size: int = 5
    stt_chunk_s: float = 300.0  # audio transcribed per window: memory stays flat on long media
    stt_no_speech_threshold: float = 0.6  # a segment above this no-speech probability...
    stt_log_prob_threshold: float = -1.0  # ...and below this mean log-probability is silence: dropped
    # translation (Gemini: GeminiSettings). No key: translation requests are refused with
    # captions.translation_unavailable.
    translate_batch_cues: int = 80
    translate_attempts: int = 5
    translate_retry_initial_s: float = 1.0
    translate_retry_max_s: float = 30.0
    # a transcript request for a video whose video.ingested this service has not handled yet is retried this
    # many deliveries (the bus backs off) before it is answered captions.failed video.not_found
    video_wait_attempts: int = 3
