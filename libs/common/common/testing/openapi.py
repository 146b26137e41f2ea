"""Comparing OpenAPI documents as a reviewer would: key and list order ignored, differences named by part."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["canonical", "drift"]


def canonical(value: Any) -> Any:
    """``value`` with the order of object keys and of list items made irrelevant (documents compared as sets)."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


def _parts(doc: dict[str, Any]) -> dict[str, Any]:
    """Each path, each schema and every other part of ``doc``, by a name a reviewer reads."""
    components = dict(doc.get("components", {}))
    return (
        {f"path {k}": v for k, v in doc.get("paths", {}).items()}
        | {f"schema {k}": v for k, v in components.pop("schemas", {}).items()}
        | {f"components.{k}": v for k, v in components.items()}
        | {k: v for k, v in doc.items() if k not in ("paths", "components")}
    )


def drift(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Where ``new`` differs from ``old`` (order aside): parts only in one of them, and parts that changed."""
    a, b = _parts(old), _parts(new)
    return (
        [f"{k} only in the first" for k in sorted(set(a) - set(b))]
        + [f"{k} only in the second" for k in sorted(set(b) - set(a))]
        + [f"{k} changed" for k in sorted(set(a) & set(b)) if canonical(a[k]) != canonical(b[k])]
    )
