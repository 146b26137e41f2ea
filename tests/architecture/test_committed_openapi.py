"""The committed API document web/openapi.json (the web client is typed from it) is what the code generates.

A change to any route table or body without `make openapi` (and committing the result) fails here, not in a
user's browser. ``tests/e2e/test_openapi_served.py`` checks the running gateway serves the same document.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from common.testing.openapi import canonical, drift

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "web" / "openapi.json"


def generated() -> dict[str, Any]:
    """What ``scripts/gen_openapi.py`` writes for the current code."""
    spec = importlib.util.spec_from_file_location("gen_openapi", ROOT / "scripts" / "gen_openapi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    document: dict[str, Any] = module.aggregate()
    return document


def test_the_committed_web_openapi_json_is_what_the_code_generates() -> None:
    committed = json.loads(COMMITTED.read_text())
    current = generated()
    assert canonical(committed) == canonical(current), (
        "web/openapi.json (first) is stale against the code (second): run `make openapi` and commit it\n  "
        + "\n  ".join(drift(committed, current))
    )


def test_the_comparison_is_blind_to_order_only() -> None:
    """The check above ignores key and list order but sees a renamed field, a new path or a changed type."""
    doc = json.loads(COMMITTED.read_text())
    reordered = json.loads(json.dumps(doc, sort_keys=True))
    reordered["tags"] = list(reversed(doc.get("tags", [])))
    reordered["paths"] = dict(reversed(list(doc["paths"].items())))
    assert canonical(reordered) == canonical(doc) and not drift(doc, reordered)

    name, schema = next((n, s) for n, s in doc["components"]["schemas"].items() if s.get("properties"))
    field = next(iter(schema["properties"]))
    renamed = json.loads(json.dumps(doc))
    props = renamed["components"]["schemas"][name]["properties"]
    props[f"{field}_renamed"] = props.pop(field)
    assert canonical(renamed) != canonical(doc) and drift(doc, renamed) == [f"schema {name} changed"]

    added = json.loads(json.dumps(doc))
    added["paths"]["/api/v1/new-thing"] = {"get": {"operationId": "newThing", "responses": {}}}
    assert drift(doc, added) == ["path /api/v1/new-thing only in the second"]
