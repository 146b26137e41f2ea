"""The one service registry (``common.registry``) is the list: every place that names the services agrees with it."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from common import registry
from common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_lists_exactly_the_services_in_the_tree() -> None:
    on_disk = {p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml")}
    assert set(registry.NAMES) == on_disk


def test_ports_and_names_are_unique() -> None:
    ports = [p for s in registry.SERVICES for _, p in s.processes]
    assert len(ports) == len(set(ports))
    assert len(registry.NAMES) == len(set(registry.NAMES))


def test_the_workspace_and_import_contracts_name_every_service() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    sources = set(config["tool"]["uv"]["sources"])
    assert {f"reelforge-{n}" for n in registry.NAMES} <= sources
    contracts = config["tool"]["importlinter"]
    clients = {p.parent.name for p in (ROOT / "clients").glob("*/pyproject.toml")}  # e.g. the CLI
    assert set(contracts["root_packages"]) == {"common", *registry.NAMES, *clients}
    independent = next(c for c in contracts["contracts"] if c["type"] == "independence")
    assert set(independent["modules"]) == set(registry.NAMES)
    assert set(config["tool"]["ruff"]["lint"]["isort"]["known-first-party"]) == {
        "common",
        *registry.NAMES,
        *clients,
    }


def test_every_services_settings_default_to_its_registry_ports() -> None:
    for spec in registry.SERVICES:
        config = importlib.import_module(f"{spec.name}.config")
        settings_types = [
            t for t in vars(config).values() if isinstance(t, type) and t.__module__ == config.__name__
        ]
        settings = next(t for t in settings_types if issubclass(t, ServiceSettings))()
        assert (settings.service, settings.http_port) == (spec.name, spec.api_port)
        assert settings.worker_port == (spec.worker_port or 0), spec.name
