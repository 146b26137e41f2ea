"""OpenAPI 3.1: the whole public API, merged from the gateway's own document and every reachable service's."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from common.logging import get_logger

from .proxy import route_for

log = get_logger(__name__)


def _rewrite_refs(node: Any, renames: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str) and v in renames:
                out[k] = renames[v]
            else:
                out[k] = _rewrite_refs(v, renames)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, renames) for v in node]
    return node


def merge(base: dict[str, Any], docs: Mapping[str, dict[str, Any] | None]) -> dict[str, Any]:
    """``base`` plus every service document's paths that the gateway routes to that service.

    Component names that clash with different content are renamed ``<service>_<Name>`` (refs rewritten);
    ``None`` documents (unreachable services) are listed under ``x-unavailable``.
    """
    out = copy.deepcopy(base)
    components: dict[str, dict[str, Any]] = out.setdefault("components", {})
    tags = {t["name"]: t for t in out.get("tags", [])}
    unavailable: list[str] = []
    for service, doc in sorted(docs.items()):
        if doc is None:
            unavailable.append(service)
            continue
        renames: dict[str, str] = {}
        for section, entries in (doc.get("components") or {}).items():
            if section == "securitySchemes":  # referenced by name, not $ref: share them
                for name, value in entries.items():
                    components.setdefault(section, {}).setdefault(name, value)
                continue
            target = components.setdefault(section, {})
            for name, value in entries.items():
                if name in target and target[name] != value:
                    renames[f"#/components/{section}/{name}"] = f"#/components/{section}/{service}_{name}"
        doc = _rewrite_refs(doc, renames)
        for section, entries in (doc.get("components") or {}).items():
            if section == "securitySchemes":
                continue
            target = components.setdefault(section, {})
            for name, value in entries.items():
                new = renames.get(f"#/components/{section}/{name}", f"#/components/{section}/{name}").rsplit(
                    "/", 1
                )[1]
                target[new] = value
        for path, item in (doc.get("paths") or {}).items():
            route = route_for("*", path)
            if route is None or route.upstream != service:
                log.info("openapi.path_not_routed", service=service, path=path)
                continue
            out["paths"].setdefault(path, {}).update(item)
        for tag in doc.get("tags") or []:
            tags.setdefault(tag["name"], tag)
    out["tags"] = list(tags.values())
    out["x-unavailable"] = unavailable
    return out


class OpenAPIAggregator:
    """Fetches every upstream's ``/openapi.json`` (concurrently, short timeout) and caches the merged result."""

    def __init__(
        self,
        *,
        base: Callable[[], dict[str, Any]],
        upstreams: Mapping[str, str],
        timeout_s: float = 2.0,
        ttl_s: float = 30.0,
    ) -> None:
        self.base, self.upstreams, self.timeout_s, self.ttl_s = base, dict(upstreams), timeout_s, ttl_s
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self, session: aiohttp.ClientSession, service: str, base: str) -> dict[str, Any] | None:
        try:
            async with session.get(
                f"{base}/openapi.json", timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            ) as r:
                if r.status != 200:
                    log.warning("openapi.upstream_status", service=service, status=r.status)
                    return None
                doc = json.loads(await r.read())
                return doc if isinstance(doc, dict) else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("openapi.upstream_unreachable", service=service, error=repr(exc))
            return None

    async def document(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        """The merged document (cached for ``ttl_s``)."""
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.ttl_s:
                return self._cached[1]
            names = list(self.upstreams)
            fetched = await asyncio.gather(*(self._fetch(session, n, self.upstreams[n]) for n in names))
            doc = merge(self.base(), dict(zip(names, fetched, strict=True)))
            self._cached = (time.monotonic(), doc)
            return doc
