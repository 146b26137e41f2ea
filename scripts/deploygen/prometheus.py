"""deploy/prometheus/prometheus.yml: one scrape job per service (api and worker)."""

from __future__ import annotations

from typing import Any

from .table import SERVICES
from .yamlout import dump


def prometheus() -> str:
    jobs: list[dict[str, Any]] = []
    for s in SERVICES:
        targets = [{"targets": [f"{s.name}:{s.api_port}"], "labels": {"process": "api"}}]
        if s.worker_port:
            targets.append({"targets": [f"{s.name}-worker:{s.worker_port}"], "labels": {"process": "worker"}})
        jobs.append({"job_name": f"reelforge-{s.name}", "static_configs": targets})
    jobs.append({"job_name": "rabbitmq", "static_configs": [{"targets": ["rabbitmq:15692"]}]})
    jobs.append({"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]})
    return dump(
        {
            "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
            "rule_files": ["alerts.yml"],  # relative to prometheus.yml
            "scrape_configs": jobs,
        }
    )
