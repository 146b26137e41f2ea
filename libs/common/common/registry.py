"""The one registry of Reelforge's services: names, ports, workers, job kinds, public paths, schemas.

The gateway's default upstreams and routes, the deployment files (``scripts/deploygen``), the e2e stack and the
architecture and deploy tests all read this table; adding a service starts with a row here
(docs/development.md, "Adding a service").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

API_PREFIX = "/api/v1"


@dataclass(frozen=True, kw_only=True)
class ServiceSpec:
    """One deployable service: an api process and, when it does long work, a worker process."""

    name: str
    api_port: int
    #: the worker's /healthz, /readyz, /metrics port; None: no worker process (its consumers run in the api)
    worker_port: int | None
    #: job kinds its worker claims from its ``jobs`` table (``LeasedJobRunner``)
    job_kinds: tuple[str, ...] = ()
    #: public paths it owns, each a prefix of whole segments; ``{id}`` stands for any one segment
    prefixes: tuple[str, ...] = ()
    #: False for the gateway: it serves its own prefixes instead of proxying them
    proxied: bool = True

    @property
    def has_worker(self) -> bool:
        """Whether a ``python -m <name> worker`` process runs."""
        return self.worker_port is not None

    @property
    def schema(self) -> str:
        """Its Postgres schema (a deployment may override it with ``DB_SCHEMA``)."""
        return self.name

    @property
    def local_url(self) -> str:
        """Its api's base URL on one machine (``make up``)."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def processes(self) -> tuple[tuple[str, int], ...]:
        """``(role, port)`` of each process: the api, then the worker if any."""
        api = (("api", self.api_port),)
        return api if self.worker_port is None else (*api, ("worker", self.worker_port))


def _v1(*paths: str) -> tuple[str, ...]:
    return tuple(API_PREFIX + p for p in paths)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="gateway",
        api_port=8080,
        worker_port=None,
        prefixes=_v1("/auth", "/me", "/jobs", "/ws"),
        proxied=False,
    ),
    ServiceSpec(
        name="ingest",
        api_port=8001,
        worker_port=9101,
        job_kinds=("import", "search"),
        prefixes=_v1("/videos", "/imports", "/searches"),
    ),
    ServiceSpec(
        name="streaming",
        api_port=8002,
        worker_port=9102,
        job_kinds=("transcode",),
        prefixes=(*_v1("/videos/{id}/stream", "/videos/{id}/playback", "/streams", "/webhooks"), "/play"),
    ),
    ServiceSpec(
        name="captions",
        api_port=8003,
        worker_port=9103,
        job_kinds=("captions", "transcript"),
        prefixes=_v1("/videos/{id}/captions", "/captions"),
    ),
    ServiceSpec(
        name="analysis",
        api_port=8004,
        worker_port=9104,
        job_kinds=("analysis", "analysis_chunk"),
        prefixes=_v1("/analyses"),
    ),
    ServiceSpec(
        name="render",
        api_port=8005,
        worker_port=9105,
        job_kinds=("render",),
        prefixes=_v1("/rankings", "/renders"),
    ),
    ServiceSpec(name="billing", api_port=8006, worker_port=9106, prefixes=_v1("/billing")),
)

NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
#: the services the gateway proxies to, in registry order
UPSTREAMS: tuple[str, ...] = tuple(s.name for s in SERVICES if s.proxied)
WORKERS: tuple[str, ...] = tuple(s.name for s in SERVICES if s.has_worker)


def get(name: str) -> ServiceSpec:
    """The service called ``name``; ``KeyError`` when there is none."""
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(name)


def _segments(path: str) -> list[str]:
    # kept exactly: an empty segment ("//") matches nothing a prefix names
    return path.split("/")[1:] if path.startswith("/") else []


def _match(prefix: list[str], path: list[str]) -> bool:
    if len(path) < len(prefix):
        return False
    return all(p == s or (p == "{id}" and s != "") for p, s in zip(prefix, path, strict=False))


def _routes() -> Iterator[tuple[list[str], str]]:
    for spec in SERVICES:
        for prefix in spec.prefixes:
            yield _segments(prefix), spec.name


def owner_of(path: str) -> str | None:
    """The service owning ``path``: the one with the longest matching prefix, or None when nobody owns it."""
    segments = _segments(path)
    best: tuple[int, str] | None = None
    for prefix, name in _routes():
        if _match(prefix, segments) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), name)
    return best[1] if best else None
