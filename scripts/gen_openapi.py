#!/usr/bin/env python3
"""Write the gateway's aggregated OpenAPI document without running any service (the web app's client is typed from it).

Each service's document is built from its route table (``<service>.api.API``), then merged exactly as the running
gateway merges what it fetches (``gateway.openapi.merge``). A service without a route table yet is listed under
``x-unavailable``, as an unreachable one is at run time.

    scripts/gen_openapi.py [OUT]        # default web/openapi.json
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from common import registry
from gateway.api import gateway_document
from gateway.openapi import merge

ROOT = Path(__file__).resolve().parents[1]


def service_document(name: str) -> dict[str, Any] | None:
    """``name``'s OpenAPI document from its route table, or None when it has none."""
    try:
        module = importlib.import_module(f"{name}.api")
    except ModuleNotFoundError as exc:
        if exc.name not in (name, f"{name}.api"):
            raise
        return None
    api = getattr(module, "API", None)
    return None if api is None else api.document()


def aggregate() -> dict[str, Any]:
    """The document ``GET /api/v1/openapi.json`` serves when every service answers."""
    return merge(gateway_document(), {name: service_document(name) for name in registry.UPSTREAMS})


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "web" / "openapi.json"
    text = json.dumps(aggregate(), indent=1, sort_keys=True) + "\n"
    # unchanged: keep the mtime, so bootstrap sees the build is current
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    print(f"{out}: {len(json.loads(text)['paths'])} paths")


if __name__ == "__main__":
    main()
