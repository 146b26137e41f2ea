"""docker-compose.yml: the infrastructure, then every service's migrate, api and worker containers."""

from __future__ import annotations

from typing import Any

from .table import SERVICES, production_env
from .yamlout import HEADER, dump_one


def compose() -> str:
    env = production_env(
        {
            "DATABASE_URL": "postgresql://reelforge:${POSTGRES_PASSWORD:-reelforge}@postgres:5432/reelforge",
            "AMQP_URL": "amqp://reelforge:${RABBITMQ_PASSWORD:-reelforge}@rabbitmq:5672/",
            "REDIS_URL": "redis://redis:6379/0",
            "S3_ENDPOINT_URL": "http://minio:9000",
            "S3_ACCESS_KEY_ID": "${MINIO_ROOT_USER:-reelforge}",
            "S3_SECRET_ACCESS_KEY": "${MINIO_ROOT_PASSWORD:-reelforge-secret}",
            "PUBLIC_BASE_URL": "${PUBLIC_BASE_URL:-http://127.0.0.1:8080}",
        }
    )
    healthcheck = {
        "test": ["CMD", "python", "/usr/local/bin/reelforge-healthcheck"],
        "interval": "10s",
        "timeout": "5s",
        "retries": 5,
        "start_period": "30s",
    }
    minio_env = {
        "MINIO_ROOT_USER": "${MINIO_ROOT_USER:-reelforge}",
        "MINIO_ROOT_PASSWORD": "${MINIO_ROOT_PASSWORD:-reelforge-secret}",
    }
    services: dict[str, Any] = {
        "postgres": {
            "image": "postgres:16-alpine",
            "environment": {
                "POSTGRES_USER": "reelforge",
                "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-reelforge}",
                "POSTGRES_DB": "reelforge",
            },
            "volumes": ["postgres:/var/lib/postgresql/data"],
            "healthcheck": {
                "test": ["CMD-SHELL", "pg_isready -U reelforge -d reelforge"],
                "interval": "5s",
                "timeout": "3s",
                "retries": 30,
            },
            "restart": "unless-stopped",
        },
        "rabbitmq": {
            "image": "rabbitmq:3-management",
            "hostname": "rabbitmq",  # the node name, hence the data directory, must not change between runs
            "environment": {
                "RABBITMQ_DEFAULT_USER": "reelforge",
                "RABBITMQ_DEFAULT_PASS": "${RABBITMQ_PASSWORD:-reelforge}",
            },
            "volumes": [
                "rabbitmq:/var/lib/rabbitmq",
                "./deploy/rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro",
            ],
            "ports": ["127.0.0.1:15672:15672"],
            "healthcheck": {
                "test": ["CMD", "rabbitmq-diagnostics", "-q", "check_port_connectivity"],
                "interval": "10s",
                "timeout": "10s",
                "retries": 30,
                "start_period": "20s",
            },
            "restart": "unless-stopped",
        },
        "redis": {
            "image": "redis:7-alpine",
            "command": ["redis-server", "--save", "", "--appendonly", "no"],
            "healthcheck": {
                "test": ["CMD", "redis-cli", "ping"],
                "interval": "5s",
                "timeout": "3s",
                "retries": 30,
            },
            "restart": "unless-stopped",
        },
        "minio": {
            "image": "minio/minio",
            "command": ["server", "/data", "--console-address", ":9001"],
            "environment": minio_env,
            "volumes": ["minio:/data"],
            "ports": ["127.0.0.1:9001:9001"],
            "healthcheck": {
                "test": ["CMD", "mc", "ready", "local"],
                "interval": "5s",
                "timeout": "5s",
                "retries": 30,
            },
            "restart": "unless-stopped",
        },
        "minio-init": {
            "image": "minio/mc",
            "depends_on": {"minio": {"condition": "service_healthy"}},
            "environment": minio_env,
            "entrypoint": ["/bin/sh", "-c"],
            # versioning: an overwritten or deleted object stays recoverable (see docs/operations.md, backups)
            "command": [
                "set -e\n"
                'mc alias set local http://minio:9000 "$$MINIO_ROOT_USER" "$$MINIO_ROOT_PASSWORD"\n'
                "mc mb --ignore-existing local/reelforge\n"
                "mc version enable local/reelforge\n"
            ],
            "restart": "no",
        },
        "prometheus": {
            "image": "prom/prometheus",
            "command": [
                "--config.file=/etc/prometheus/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                "--storage.tsdb.retention.time=15d",
                "--web.enable-lifecycle",
            ],
            "volumes": ["./deploy/prometheus:/etc/prometheus:ro", "prometheus:/prometheus"],
            "ports": ["127.0.0.1:9090:9090"],
            "restart": "unless-stopped",
        },
        "grafana": {
            "image": "grafana/grafana",
            "environment": {
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_SECURITY_ADMIN_PASSWORD": "${GRAFANA_ADMIN_PASSWORD:-admin}",
                "GF_USERS_ALLOW_SIGN_UP": "false",
            },
            "volumes": [
                "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
                "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro",
                "grafana:/var/lib/grafana",
            ],
            "ports": ["127.0.0.1:3000:3000"],
            "depends_on": {"prometheus": {"condition": "service_started"}},
            "restart": "unless-stopped",
        },
    }
    for s in SERVICES:
        build = {
            "context": ".",
            "dockerfile": "docker/service.Dockerfile",
            "args": {
                "SERVICE": s.name,
                **({"EXTRA_APT_PACKAGES": s.apt} if s.apt else {}),
                **({"WEB_APP": "build"} if s.name == "gateway" else {}),  # the image serves the web app
            },
        }
        image = f"reelforge/{s.name}:${{REELFORGE_TAG:-dev}}"
        services[f"{s.name}-migrate"] = {
            "build": build,
            "image": image,
            "command": ["migrate"],
            "environment": env,
            "depends_on": {"postgres": {"condition": "service_healthy"}},
            "restart": "no",
        }
        infra = {
            f"{s.name}-migrate": {"condition": "service_completed_successfully"},
            "rabbitmq": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "minio-init": {"condition": "service_completed_successfully"},
        }
        procs = [("api", s.name, s.api_port)]
        if s.worker_port:
            procs.append(("worker", f"{s.name}-worker", s.worker_port))
        for command, name, port in procs:
            proc_env = {**env, "HTTP_PORT": str(port)}
            if command == "worker":
                proc_env["WORKER_PORT"] = str(port)
            if s.name == "streaming":
                # production refuses the built-in development key: the operator must choose one
                proc_env["PLAYBACK_KEYS"] = (
                    "${PLAYBACK_KEYS:?set PLAYBACK_KEYS=<kid>:<secret of 16+ characters> (docs/operations.md)}"
                )
            svc: dict[str, Any] = {
                "build": build,
                "image": image,
                "command": [command],
                "environment": proc_env,
                "depends_on": dict(infra),
                "healthcheck": healthcheck,
                "restart": "unless-stopped",
            }
            if command == "worker":
                svc["stop_grace_period"] = f"{s.worker_grace_s}s"
            if s.name == "gateway":
                svc["ports"] = ["8080:8080"]
                svc["volumes"] = ["gateway-keys:/var/lib/reelforge/keys"]
                svc["depends_on"]["gateway-keys"] = {"condition": "service_completed_successfully"}
            services[name] = svc
        if s.name == "gateway":
            # production refuses to start without a signing key: create the first one, once (the volume keeps it)
            services["gateway-keys"] = {
                "build": build,
                "image": image,
                "entrypoint": ["/bin/sh", "-c"],
                "command": [
                    "set -e\n"
                    "if python -m gateway keys list | grep -q '\"active\": null'; then\n"
                    "  python -m gateway keys rotate\n"
                    "fi\n"
                ],
                "environment": {"ENVIRONMENT": "production", "LOG_FORMAT": "json"},
                "volumes": ["gateway-keys:/var/lib/reelforge/keys"],
                "restart": "no",
            }
    doc = {
        "name": "reelforge",
        "services": services,
        "volumes": {
            v: {} for v in ("postgres", "rabbitmq", "minio", "prometheus", "grafana", "gateway-keys")
        },
    }
    return (
        HEADER
        + "# The whole stack: `docker compose up -d --build`, then http://127.0.0.1:8080 (docs/operations.md).\n"
        + dump_one(doc)
    )
