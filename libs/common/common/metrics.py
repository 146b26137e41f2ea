"""Prometheus metrics shared by every service, and the ``/metrics`` handler."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "reelforge_http_requests_total", "HTTP requests handled", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "reelforge_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BUS_PUBLISHED = Counter("reelforge_bus_published_total", "Events published", ["service", "type"])
BUS_HANDLED = Counter(
    "reelforge_bus_handled_total", "Events handled", ["service", "queue", "type", "outcome"]
)  # outcome: ok | retry | dead | duplicate
BUS_HANDLER_LATENCY = Histogram(
    "reelforge_bus_handler_duration_seconds",
    "Event handler latency",
    ["service", "queue", "type"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600),
)
BUS_DEAD_LETTERED = Counter("reelforge_bus_dead_lettered_total", "Events dead-lettered", ["service", "queue"])
BUS_QUEUE_LAG = Gauge("reelforge_bus_queue_messages", "Messages waiting in a queue", ["service", "queue"])
OUTBOX_PENDING = Gauge("reelforge_outbox_pending", "Outbox rows not yet published", ["service"])
OUTBOX_LAG = Histogram(
    "reelforge_outbox_publish_lag_seconds",
    "Time from outbox write to confirmed publish",
    ["service"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
)
JOBS = Counter("reelforge_jobs_total", "Job status transitions", ["service", "kind", "status"])
ENCODE_SPEED = Gauge(
    "reelforge_encode_speed_ratio", "Media seconds encoded per wall second", ["service", "kind"]
)
#: dependencies (common.health): 1 while one answers; outages seen; requests refused 503 because of one
DEPENDENCY_UP = Gauge(
    "reelforge_dependency_up", "Whether a dependency answers (1) or not (0)", ["service", "dependency"]
)
DEPENDENCY_OUTAGES = Counter(
    "reelforge_dependency_outages_total",
    "Outages of a dependency seen by a process",
    ["service", "dependency"],
)
DEPENDENCY_UNAVAILABLE = Counter(
    "reelforge_dependency_unavailable_total",
    "Requests answered 503 service.unavailable because a dependency was down",
    ["service", "dependency"],
)
ERRORS = Counter("reelforge_errors_total", "Errors a user cannot cause, by where", ["service", "where"])


async def metrics_handler(request: web.Request) -> web.Response:
    """Prometheus text exposition of the default registry."""
    body = generate_latest(REGISTRY)
    resp = web.Response(body=body)
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    resp.charset = "utf-8"
    return resp
