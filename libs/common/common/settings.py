"""Typed settings, read once from the environment in each service's ``__main__``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T", bound="ServiceSettings")


class SettingsError(ValueError):
    """A setting is missing or malformed."""


def _coerce(name: str, raw: str, typ: Any) -> Any:
    if typ is bool:
        v = raw.strip().lower()
        if v in {"1", "true", "yes", "on"}:
            return True
        if v in {"0", "false", "no", "off", ""}:
            return False
        raise SettingsError(f"{name}: expected a boolean, got {raw!r}")
    if typ is int:
        try:
            return int(raw)
        except ValueError as e:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from e
    if typ is float:
        try:
            return float(raw)
        except ValueError as e:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from e
    if typ == tuple[str, ...]:
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    if typ is str or typ == (str | None):
        return raw
    raise SettingsError(f"{name}: unsupported setting type {typ!r}")


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """Settings every service has. Subclass per service and add fields; env var = field name upper-cased."""

    service: str = "reelforge"
    environment: str = "development"  # development | test | production
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    db_schema: str = ""  # defaults to the service name
    db_pool_min: int = 1
    db_pool_max: int = 10
    #: a pooled connection unused this long is closed (down to ``db_pool_min``)
    db_pool_idle_s: float = 300.0
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    bus_exchange: str = "reelforge.events"
    bus_dlx: str = "reelforge.dlx"
    bus_queue: str = ""  # defaults to the service name; tests set a unique one
    bus_prefetch: int = 16
    bus_max_retries: int = 5
    bus_retry_delays_ms: tuple[str, ...] = ("1000", "5000", "30000")
    bus_delivery_limit: int = 20
    redis_url: str = ""
    storage_url: str = "file://./var/storage"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_multipart_threshold: int = 16 * 1024 * 1024
    s3_part_size: int = 8 * 1024 * 1024
    storage_public_base_url: str = ""
    log_format: str = "auto"  # auto | json | console
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    worker_port: int = 0  # the worker role's /healthz, /readyz, /metrics port (0: use http_port)
    max_body_bytes: int = 1024 * 1024
    jwks_url: str = "http://127.0.0.1:8080/.well-known/jwks.json"
    jwt_audience: str = "reelforge"
    jwt_issuer: str = "reelforge-gateway"
    shutdown_timeout_s: float = 30.0
    idempotency_ttl_s: float = (
        24 * 3600.0
    )  # how long an Idempotency-Key's answer is kept (common.idempotency)
    idempotency_lease_s: float = 30.0  # a running request's hold on its key, renewed; a dead holder's lapses
    health_probe_interval_s: float = 10.0  # dependency checks in the background (every 1 s while one is down)
    # the job runner (common.jobrunner.LeasedJobRunner.from_settings) of a worker that runs jobs
    job_concurrency: int = 1  # jobs at once per worker process
    job_lease_s: float = 60.0  # renewed every third of it; a killed worker's job is taken over after it
    job_max_attempts: int = 3  # claims of one job (crashes, retries) before it fails with internal.error
    job_poll_interval_s: float = 1.0  # NOTIFY wakes the runner at once; the poll covers a lost notification
    job_progress_interval_s: float = 0.5  # throttle of direct job.progress.v1 snapshots
    job_retry_delays_s: tuple[
        str, ...
    ] = ()  # back-off before retrying an unexpected error (empty: fail at once)
    tmp_dir: str = "./var/tmp"
    # where a paid service reads billing's price list (common.credits.PriceList)
    billing_url: str = "http://127.0.0.1:8006"
    price_cache_s: float = 60.0  # billing's price list is read at most this often
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        """The Postgres schema this service owns."""
        return self.db_schema or self.service

    @property
    def queue(self) -> str:
        """The durable queue this service consumes (``<queue>.dead`` holds its dead letters)."""
        return self.bus_queue or self.service

    @classmethod
    def from_env(cls: type[T], env: Mapping[str, str] | None = None, **overrides: Any) -> T:
        """Build settings from ``env`` (default ``os.environ``); explicit overrides win."""
        source = os.environ if env is None else env
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            key = f.name.upper()
            if key in source:
                values[f.name] = _coerce(key, source[key], hints[f.name])
        values.update(overrides)
        return cls(**values)

    def with_(self: T, **changes: Any) -> T:
        """A copy with some fields changed (tests, CLI flags)."""
        from dataclasses import replace

        return replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class GeminiSettings:
    """The Gemini API settings of a service that calls it (a mixin beside ``ServiceSettings``)."""

    gemini_api_key: str = ""  # empty: the service's offline path, or a refusal with a clear code
    gemini_base_url: str = ""  # empty: the SDK's default endpoint
    gemini_model: str = "gemini-2.5-flash"
    gemini_timeout_s: float = 120.0


Opts = TypeVar("Opts")


def section(options: type[Opts], settings: ServiceSettings, *prefixes: str) -> Opts:
    """``options`` (a dataclass) with each field read from the setting ``<prefix><field>`` of the first prefix naming one.

    A component's options (a client's, a model's) are a section of its service's settings: one source of their
    values, defaults included.
    """
    values: dict[str, Any] = {}
    for f in fields(options):  # type: ignore[arg-type]
        for prefix in prefixes:
            if hasattr(settings, prefix + f.name):
                values[f.name] = getattr(settings, prefix + f.name)
                break
        else:
            raise SettingsError(
                f"no setting {' or '.join(p + f.name for p in prefixes)} for {options.__name__}"
            )
    return options(**values)


@dataclass(frozen=True, kw_only=True)
class ScratchSettings:
    """A service's own scratch directory, ``<TMP_DIR>/<service>``, and the sweep of what a killed process left there
    (a mixin beside ``ServiceSettings``): an entry older than ``tmp_max_age_s`` is removed, every
    ``tmp_sweep_interval_s``."""

    tmp_max_age_s: float = 2 * 3600.0
    tmp_sweep_interval_s: float = 600.0

    @property
    def scratch_dir(self) -> Path:
        """The directory holding this service's temporary files (swept for crash leftovers)."""
        assert isinstance(self, ServiceSettings), "ScratchSettings is a mixin of ServiceSettings"
        return Path(self.tmp_dir).expanduser().resolve() / self.service
