"""Write the deployment files from ``common.registry`` (and the DEPLOY table), so ports and names agree everywhere.

    .venv/bin/python scripts/gen_deploy.py          # (re)write the files
    .venv/bin/python scripts/gen_deploy.py --check  # exit 1 when a file is not what the tables say

One module per target: ``procfile``, ``compose``, ``prometheus``, ``workloads`` (each service's Kubernetes objects,
HPAs, KEDA) and ``cluster`` (NetworkPolicies, ConfigMap, kustomization); ``table`` holds the deployment-only facts.
Generated: Procfile, docker-compose.yml, deploy/prometheus/prometheus.yml, and in deploy/k8s/: base/configmap.yaml,
base/kustomization.yaml, base/networkpolicies.yaml, base/hpa.yaml, base/services/<svc>.yaml and
components/keda/{kustomization,scaledobjects}.yaml. Everything else under deploy/ is written by hand.
Adding a service = a row in ``common.registry`` and in ``table.DEPLOY``, then `make deploy-files`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cluster, compose, procfile, prometheus, workloads
from .table import SERVICES

ROOT = Path(__file__).resolve().parents[2]


def outputs() -> dict[Path, str]:
    """Every generated file and its text."""
    keda_kustomization, keda_objects = workloads.keda()
    files = {
        ROOT / "Procfile": procfile.procfile(),
        ROOT / "docker-compose.yml": compose.compose(),
        ROOT / "deploy/prometheus/prometheus.yml": prometheus.prometheus(),
        ROOT / "deploy/k8s/base/configmap.yaml": cluster.configmap(),
        ROOT / "deploy/k8s/base/kustomization.yaml": cluster.base_kustomization(),
        ROOT / "deploy/k8s/base/networkpolicies.yaml": cluster.network_policies(),
        ROOT / "deploy/k8s/base/hpa.yaml": workloads.hpas(),
        ROOT / "deploy/k8s/components/keda/kustomization.yaml": keda_kustomization,
        ROOT / "deploy/k8s/components/keda/scaledobjects.yaml": keda_objects,
    }
    for s in SERVICES:
        files[ROOT / f"deploy/k8s/base/services/{s.name}.yaml"] = workloads.service_manifests(s)
    return files


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the files; prints what it wrote."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print("out of date (run `make deploy-files`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    for p in stale:
        print(f"wrote {p}")
    return 0
