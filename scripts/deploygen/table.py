"""What a deployment needs beyond ``common.registry``: resources, scratch space, grace, autoscaling, egress.

Names, ports, workers and job kinds come from the registry; this table adds, per service, what only the
deployment files need. Every registry service must have a row (``services()`` fails otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

from common import registry

NAMESPACE = "reelforge"
UID = 10001
PART_OF = {"app.kubernetes.io/part-of": "reelforge"}
# Where ingress traffic and Prometheus scrapes come from (namespace names; patch in an overlay if yours differ).
INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]


@dataclass(frozen=True)
class Resources:
    """Kubernetes requests/limits of one process."""

    cpu: str
    memory: str
    cpu_limit: str
    memory_limit: str


@dataclass(frozen=True, kw_only=True)
class Deploy:
    """The deployment-only facts of one service."""

    api: Resources
    worker: Resources | None = None
    tmp: str = "1Gi"  # emptyDir size for /tmp (TMP_DIR): media scratch space
    worker_grace_s: int = 60  # SIGTERM → kill: the time a worker has to finish or requeue what it holds
    autoscale_max: int | None = None  # HPA (CPU) / KEDA (queue length) on the worker
    internet: bool = False  # needs plain-HTTP egress to the internet (URL imports, webhooks)
    apt: str = ""  # EXTRA_APT_PACKAGES for its image


@dataclass(frozen=True, kw_only=True)
class Service(Deploy):
    """A registry service with its deployment facts: what every generator works from."""

    name: str
    api_port: int
    worker_port: int | None
    # job kinds the worker claims from its jobs table (LeasedJobRunner): KEDA scales on runnable jobs in
    # Postgres, not on the RabbitMQ queue, which such workers drain at once
    job_kinds: tuple[str, ...] = ()


SMALL = Resources("100m", "256Mi", "1", "512Mi")
ANALYSIS_WORKER = Resources("500m", "1Gi", "2", "2Gi")
DEPLOY: dict[str, Deploy] = {
    "gateway": Deploy(api=Resources("250m", "256Mi", "2", "512Mi")),
    "ingest": Deploy(
        api=SMALL,
        worker=Resources("250m", "512Mi", "2", "2Gi"),
        tmp="20Gi",
        worker_grace_s=120,
        internet=True,
    ),
    "streaming": Deploy(
        api=Resources("250m", "256Mi", "2", "1Gi"),
        worker=Resources("1", "1Gi", "4", "4Gi"),
        tmp="50Gi",
        worker_grace_s=300,
        autoscale_max=10,
        internet=True,
    ),
    "captions": Deploy(api=SMALL, worker=Resources("1", "2Gi", "4", "4Gi"), tmp="10Gi", worker_grace_s=300),
    "analysis": Deploy(api=SMALL, worker=ANALYSIS_WORKER, tmp="5Gi", worker_grace_s=120, autoscale_max=10),
    "render": Deploy(
        api=SMALL,
        worker=Resources("1", "2Gi", "4", "4Gi"),
        tmp="30Gi",
        worker_grace_s=300,
        autoscale_max=8,
        apt="fonts-noto-cjk",
    ),
    "billing": Deploy(api=SMALL, worker=SMALL),
}


def services() -> tuple[Service, ...]:
    """Every registry service, in registry order, with its deployment facts."""
    missing = set(registry.NAMES) ^ set(DEPLOY)
    if missing:
        raise SystemExit(f"deploygen: registry and DEPLOY table disagree on {sorted(missing)}")
    out = []
    for spec in registry.SERVICES:
        d = DEPLOY[spec.name]
        if spec.has_worker != (d.worker is not None):
            raise SystemExit(f"deploygen: {spec.name}: worker resources must match the registry's worker")
        out.append(
            Service(
                name=spec.name,
                api_port=spec.api_port,
                worker_port=spec.worker_port,
                job_kinds=spec.job_kinds,
                api=d.api,
                worker=d.worker,
                tmp=d.tmp,
                worker_grace_s=d.worker_grace_s,
                autoscale_max=d.autoscale_max,
                internet=d.internet,
                apt=d.apt,
            )
        )
    return tuple(out)


SERVICES = services()


def production_env(own: dict[str, str]) -> dict[str, str]:
    """The settings every process of a production deployment gets, whatever runs it (compose or Kubernetes),
    with ``own`` (that deployment's) before the upstreams."""
    return {
        "ENVIRONMENT": "production",
        "LOG_FORMAT": "json",
        "HTTP_HOST": "0.0.0.0",
        "TMP_DIR": "/tmp",
        "STORAGE_URL": "s3://reelforge",
        "S3_REGION": "us-east-1",
        "JWKS_URL": "http://gateway:8080/.well-known/jwks.json",
        "IMPORT_ALLOW_PRIVATE": "false",
        **own,
        # the gateway reaches each service by its name (a compose service, a Kubernetes Service)
        **{
            f"UPSTREAM_{s.name.upper()}": f"http://{s.name}:{s.api_port}"
            for s in SERVICES
            if s.name != "gateway"
        },
    }
