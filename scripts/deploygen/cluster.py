"""Cluster-wide Kubernetes files: NetworkPolicies, the ConfigMap and the base kustomization."""

from __future__ import annotations

from typing import Any

from .table import (
    INGRESS_NAMESPACE,
    MONITORING_NAMESPACE,
    NAMESPACE,
    PART_OF,
    PRIVATE_RANGES,
    SERVICES,
    production_env,
)
from .yamlout import dump, labels


def network_policies() -> str:
    reelforge = {"podSelector": {"matchLabels": PART_OF}}
    gateway = {"podSelector": {"matchLabels": labels("gateway", "api")}}

    def ns(name: str) -> dict[str, Any]:
        return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}

    def tcp(*ports: int) -> list[dict[str, Any]]:
        return [{"protocol": "TCP", "port": p} for p in ports]

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "labels": dict(PART_OF)},
            "spec": spec,
        }

    docs = [
        policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        policy(
            "allow-dns",
            {
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {**ns("kube-system"), "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
        ),
        # Postgres, RabbitMQ (AMQP, AMQPS), Redis (plain, TLS), S3/R2/Gemini over HTTPS, in-cluster MinIO.
        # Managed services have no stable pod labels, so this is by port; narrow it with ipBlocks in an overlay.
        policy(
            "allow-egress-infrastructure",
            {
                "podSelector": {"matchLabels": PART_OF},
                "policyTypes": ["Egress"],
                "egress": [{"ports": tcp(5432, 5671, 5672, 6379, 6380, 443, 9000)}],
            },
        ),
        # Every service fetches the gateway's JWKS; the gateway proxies to every api.
        policy(
            "allow-egress-to-gateway",
            {
                "podSelector": {"matchLabels": PART_OF},
                "policyTypes": ["Egress"],
                "egress": [{"to": [gateway], "ports": tcp(8080)}],
            },
        ),
        policy(
            "gateway-ingress",
            {
                "podSelector": {"matchLabels": labels("gateway", "api")},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [ns(INGRESS_NAMESPACE)], "ports": tcp(8080)},
                    {"from": [reelforge], "ports": tcp(8080)},
                ],
            },
        ),
        policy(
            "gateway-egress-to-apis",
            {
                "podSelector": {"matchLabels": labels("gateway", "api")},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "podSelector": {
                                    "matchLabels": {**PART_OF, "app.kubernetes.io/component": "api"}
                                }
                            }
                        ],
                        "ports": tcp(*(s.api_port for s in SERVICES if s.name != "gateway")),
                    }
                ],
            },
        ),
    ]
    for s in SERVICES:
        if s.name == "gateway":
            continue
        docs.append(
            policy(
                f"{s.name}-ingress-from-gateway",
                {
                    "podSelector": {"matchLabels": labels(s.name, "api")},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [gateway], "ports": tcp(s.api_port)}],
                },
            )
        )
    metrics_ports = [p for s in SERVICES for p in (s.api_port, s.worker_port) if p]
    docs.append(
        policy(
            "allow-metrics-scrape",
            {
                "podSelector": {"matchLabels": PART_OF},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [ns(MONITORING_NAMESPACE)], "ports": tcp(*metrics_ports)}],
            },
        )
    )
    internet = [s.name for s in SERVICES if s.internet]
    docs.append(
        policy(
            "allow-egress-internet",
            {
                # URL imports and webhooks reach public addresses only (no private ranges: SSRF)
                "podSelector": {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/name", "operator": "In", "values": internet},
                    ]
                },
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}],
                        "ports": tcp(80, 443),
                    }
                ],
            },
        )
    )
    return dump(*docs)


def configmap() -> str:
    data = production_env(
        {
            "LOG_LEVEL": "INFO",
            "S3_ENDPOINT_URL": "",  # empty = AWS S3; R2/MinIO: their endpoint URL
            "TRUSTED_PROXY_HOPS": "1",  # the ingress controller sets X-Forwarded-For
            "PUBLIC_BASE_URL": "https://reelforge.example.com",  # where players reach /play: the Ingress host
        }
    )
    return dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "reelforge-config"},
            "data": data,
        }
    )


def base_kustomization() -> str:
    return dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": NAMESPACE,
            "labels": [{"pairs": dict(PART_OF), "includeSelectors": False}],
            "resources": [
                "namespace.yaml",
                "configmap.yaml",
                "secrets.template.yaml",
                "networkpolicies.yaml",
                "ingress.yaml",
                *(f"services/{s.name}.yaml" for s in SERVICES),
                "hpa.yaml",
            ],
        }
    )
