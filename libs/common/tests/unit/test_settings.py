"""Settings are typed, read from an environment mapping, and refuse malformed values."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from common.settings import ServiceSettings, SettingsError


@dataclass(frozen=True, kw_only=True)
class DemoSettings(ServiceSettings):
    service: str = "demo"
    max_items: int = 5
    ratio: float = 0.5
    enabled: bool = False
    hosts: tuple[str, ...] = ()


def test_defaults_and_schema() -> None:
    s = DemoSettings.from_env({})
    assert s.service == "demo" and s.schema == "demo" and s.queue == "demo"
    assert s.storage_url.startswith("file://")


def test_env_values_are_coerced() -> None:
    s = DemoSettings.from_env(
        {
            "MAX_ITEMS": "12",
            "RATIO": "1.5",
            "ENABLED": "yes",
            "HOSTS": "a, b,,c",
            "DB_SCHEMA": "demo_x",
            "BUS_QUEUE": "q1",
        }
    )
    assert (s.max_items, s.ratio, s.enabled, s.hosts) == (12, 1.5, True, ("a", "b", "c"))
    assert s.schema == "demo_x" and s.queue == "q1"


@pytest.mark.parametrize(("key", "value"), [("MAX_ITEMS", "many"), ("ENABLED", "perhaps"), ("RATIO", "x")])
def test_malformed_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=key):
        DemoSettings.from_env({key: value})


def test_overrides_win_and_with_copies() -> None:
    s = DemoSettings.from_env({"MAX_ITEMS": "3"}, max_items=9)
    assert s.max_items == 9
    t = s.with_(max_items=1)
    assert t.max_items == 1 and s.max_items == 9
