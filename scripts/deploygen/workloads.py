"""Kubernetes objects of each service: Deployments, Service, PDBs, migration Job; the workers' HPAs and KEDA."""

from __future__ import annotations

from typing import Any

from .table import PART_OF, SERVICES, UID, Resources, Service
from .yamlout import dump, labels, meta, resources

#: media jobs are minutes long: an autoscaled worker gives back one pod at a time, slowly (HPA and KEDA alike)
SCALE_DOWN: dict[str, Any] = {
    "stabilizationWindowSeconds": 300,
    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
}


def pod_spec(s: Service, command: str, port: int | None, res: Resources, grace_s: int) -> dict[str, Any]:
    env = [{"name": "HTTP_PORT", "value": str(port or s.api_port)}]
    if command == "worker":
        env.append({"name": "WORKER_PORT", "value": str(port)})
        # aiohttp's shutdown gets the grace period minus a margin to exit cleanly before SIGKILL.
        env.append({"name": "SHUTDOWN_TIMEOUT_S", "value": str(max(grace_s - 15, 10))})
    container: dict[str, Any] = {
        "name": s.name,
        "image": f"reelforge/{s.name}",
        "imagePullPolicy": "IfNotPresent",
        "args": [command],
        "env": env,
        "envFrom": [
            {"configMapRef": {"name": "reelforge-config"}},
            {"secretRef": {"name": "reelforge-secrets"}},
            # optional per-service secret: its own keys, or a DATABASE_URL with a per-service role (wins: last)
            {"secretRef": {"name": f"reelforge-{s.name}", "optional": True}},
        ],
        "resources": resources(res),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": s.tmp if command == "worker" else "1Gi"}}
    ]
    if port is not None:
        probe = {"httpGet": {"path": "/healthz", "port": "http"}, "timeoutSeconds": 3}
        container["ports"] = [{"name": "http", "containerPort": port}]
        container["startupProbe"] = {**probe, "periodSeconds": 2, "failureThreshold": 60}
        container["livenessProbe"] = {**probe, "periodSeconds": 10, "failureThreshold": 3}
        container["readinessProbe"] = {
            "httpGet": {"path": "/readyz", "port": "http"},
            "timeoutSeconds": 3,
            "periodSeconds": 5,
            "failureThreshold": 3,
        }
    if s.name == "gateway":
        # signing keys (kid-named files, as the gateway reads them) from a Secret; rotated by updating it
        container["volumeMounts"].append(
            {"name": "keys", "mountPath": "/var/run/reelforge/keys", "readOnly": True}
        )
        container["env"].append({"name": "GATEWAY_KEYS_DIR", "value": "/var/run/reelforge/keys"})
        volumes.append(
            {"name": "keys", "secret": {"secretName": "reelforge-gateway-keys", "defaultMode": 0o440}}
        )
    return {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": grace_s,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": volumes,
    }


def deployment(s: Service, component: str) -> dict[str, Any]:
    is_api = component == "api"
    port = s.api_port if is_api else s.worker_port
    res = s.api if is_api else s.worker
    assert res is not None and port is not None
    name = s.name if is_api else f"{s.name}-worker"
    grace = 45 if is_api else s.worker_grace_s
    spec: dict[str, Any] = {}
    if is_api or not s.autoscale_max:  # an autoscaled Deployment leaves replicas to its HPA/ScaledObject
        spec["replicas"] = 2 if is_api else 1
    pod = pod_spec(s, component, port, res, grace)
    if is_api:
        pod["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": labels(s.name, component)},
            }
        ]
    spec.update(
        {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels(s.name, component)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": {**labels(s.name, component), **PART_OF},
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": pod,
            },
        }
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, s.name, component),
        "spec": spec,
    }


def k8s_service(s: Service) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(s.name, s.name, "api"),
        "spec": {
            "selector": labels(s.name, "api"),
            "ports": [{"name": "http", "port": s.api_port, "targetPort": "http"}],
        },
    }


def migrate_job(s: Service) -> dict[str, Any]:
    pod = pod_spec(s, "migrate", None, Resources("100m", "128Mi", "500m", "256Mi"), 30)
    pod["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(f"{s.name}-migrate", s.name, "migrate"),
        "spec": {
            "backoffLimit": 4,
            "activeDeadlineSeconds": 900,
            "template": {"metadata": {"labels": {**labels(s.name, "migrate"), **PART_OF}}, "spec": pod},
        },
    }


def pdb(s: Service, component: str) -> dict[str, Any]:
    name = s.name if component == "api" else f"{s.name}-worker"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(name, s.name, component),
        # maxUnavailable (not minAvailable) so a one-replica dev install can still drain a node
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(s.name, component)}},
    }


def service_manifests(s: Service) -> str:
    docs: list[dict[str, Any]] = [deployment(s, "api"), k8s_service(s), pdb(s, "api")]
    if s.worker_port:
        docs += [deployment(s, "worker"), pdb(s, "worker")]
    docs.append(migrate_job(s))
    return dump(*docs)


def _autoscaled() -> list[Service]:
    """The services whose workers scale out (``autoscale_max`` set)."""
    return [s for s in SERVICES if s.autoscale_max]


def _worker_scaler(s: Service, api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An object that scales ``s``'s worker Deployment, named and labelled as that Deployment."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": meta(f"{s.name}-worker", s.name, "worker"),
        "spec": spec,
    }


def hpas() -> str:
    docs = []
    for s in _autoscaled():
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{s.name}-worker"}
        cpu = {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
        spec = {
            "scaleTargetRef": target,
            "minReplicas": 1,
            "maxReplicas": s.autoscale_max,
            "metrics": [{"type": "Resource", "resource": cpu}],
            "behavior": {"scaleUp": {"stabilizationWindowSeconds": 30}, "scaleDown": SCALE_DOWN},
        }
        docs.append(_worker_scaler(s, "autoscaling/v2", "HorizontalPodAutoscaler", spec))
    return dump(*docs)


def _work_trigger(s: Service) -> dict[str, Any]:
    """What measures a worker's backlog: runnable jobs in its schema, or its durable RabbitMQ queue."""
    if s.job_kinds:
        kinds = ", ".join(f"'{k}'" for k in s.job_kinds)
        return {
            "type": "postgresql",
            "metadata": {
                # every job that needs a worker now: queued or in hand (a worker runs one transcode at a time)
                "query": f"SELECT count(*) FROM {s.name}.jobs"
                f" WHERE kind IN ({kinds}) AND status IN ('queued', 'running')",
                "targetQueryValue": "1",
            },
            "authenticationRef": {"name": "reelforge-postgres"},
        }
    return {
        "type": "rabbitmq",
        # the service's durable work queue (one per consuming service, see its README)
        "metadata": {"protocol": "amqp", "queueName": s.name, "mode": "QueueLength", "value": "10"},
        "authenticationRef": {"name": "reelforge-rabbitmq"},
    }


def keda() -> tuple[str, str]:
    objects = []
    patches = []
    for s in _autoscaled():
        spec = {
            "scaleTargetRef": {"name": f"{s.name}-worker"},
            "minReplicaCount": 1,
            "maxReplicaCount": s.autoscale_max,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": SCALE_DOWN}}},
            "triggers": [
                _work_trigger(s),
                {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}},
            ],
        }
        objects.append(_worker_scaler(s, "keda.sh/v1alpha1", "ScaledObject", spec))
        patches.append(
            {
                "target": {
                    "group": "autoscaling",
                    "version": "v2",
                    "kind": "HorizontalPodAutoscaler",
                    "name": f"{s.name}-worker",
                },
                "patch": "$patch: delete\napiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n"
                f"metadata:\n  name: {s.name}-worker\n",
            }
        )
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        # KEDA owns the workers' HPAs when this component is used: the CPU-only HPAs of the base go away.
        "resources": ["triggerauthentication.yaml", "scaledobjects.yaml"],
        "patches": patches,
    }
    return dump(kustomization), dump(*objects)
