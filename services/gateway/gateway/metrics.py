"""The gateway's own Prometheus metrics (``reelforge_gateway_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PROXIED = Counter(
    "reelforge_gateway_proxied_total", "Requests proxied, by upstream and status", ["upstream", "status"]
)
# PROXIED's children by (upstream, status): six upstreams times the HTTP status codes, so it stays small
_proxied: dict[tuple[str, int], Counter] = {}


def count_proxied(upstream: str, status: int) -> None:
    """Count one proxied answer (without ``.labels()``'s lock and validation on every request)."""
    child = _proxied.get((upstream, status))
    if child is None:
        child = _proxied[(upstream, status)] = PROXIED.labels(upstream, str(status))
    child.inc()


RATE_LIMITED = Counter(
    "reelforge_gateway_rate_limited_total", "Requests refused with 429, by route class", ["route_class"]
)
WS_OPEN = Gauge("reelforge_gateway_websockets_open", "Open WebSocket connections on this replica")
JOB_SNAPSHOTS = Counter(
    "reelforge_gateway_job_snapshots_total", "job.progress.v1 snapshots read, by outcome", ["outcome"]
)  # outcome: applied | stale
