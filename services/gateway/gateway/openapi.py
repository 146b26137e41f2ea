"""OpenAPI 3.1: the gateway's own document, and the whole public API merged from every reachable service."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from common import openapi
from common.logging import get_logger
from common.openapi import json_body, json_content, problem_ref, schema_ref, uuid_path_param

from .proxy import route_for

log = get_logger(__name__)


def _op(summary: str, op_id: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "operationId": op_id, "tags": ["gateway"], "responses": responses, **extra}


def _query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_JOB_ID = {**uuid_path_param("id"), "description": "job id"}

_SCHEMAS: dict[str, Any] = {
    "Credentials": {
        "type": "object",
        "required": ["email", "password"],
        "properties": {
            "email": {"type": "string", "format": "email"},
            "password": {"type": "string", "minLength": 10, "maxLength": 1024},
        },
    },
    "RefreshRequest": {
        "type": "object",
        "required": ["refresh_token"],
        "properties": {"refresh_token": {"type": "string"}},
    },
    "User": {
        "type": "object",
        "required": ["id", "email", "created_at"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "email": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "TokenPair": {
        "type": "object",
        "required": ["access_token", "refresh_token", "token_type", "expires_in"],
        "properties": {
            "access_token": {"type": "string"},
            "refresh_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "kind", "status", "progress"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "kind": {"type": "string"},
            "owner_id": {"type": "string", "format": "uuid"},
            "status": {"enum": ["queued", "running", "succeeded", "failed", "canceled"]},
            "progress": {"type": "number", "minimum": 0, "maximum": 100},
            "stage": {"type": "string"},
            "error": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                    },
                ]
            },
            "result": {"type": ["object", "null"]},
            "cancel_requested": {"type": "boolean"},
            "seq": {
                "type": "integer",
                "description": "grows with every change of the job: a client ignores a pushed update with a"
                " lower seq unless it ends the job, and never changes an ended job",
            },
            "created_at": {"type": ["string", "null"], "format": "date-time"},
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "JobPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": schema_ref("Job")},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
    "JWKS": {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
    },
}


def gateway_document(*, server_url: str = "/") -> dict[str, Any]:
    """The gateway's own paths (auth, me, jobs, ws, jwks)."""
    problems = {"default": problem_ref()}
    doc = openapi.document(
        title="Reelforge gateway",
        version="1.0.0",
        description="Accounts, tokens, jobs and live progress. Errors are application/problem+json.",
        schemas=_SCHEMAS,
        paths={
            "/api/v1/auth/register": {
                "post": _op(
                    "Create an account",
                    "register",
                    {"201": json_content("User", "the account"), **problems},
                    requestBody=json_body("Credentials"),
                    security=[],
                )
            },
            "/api/v1/auth/login": {
                "post": _op(
                    "Log in: a new session",
                    "login",
                    {"200": json_content("TokenPair", "a token pair"), **problems},
                    requestBody=json_body("Credentials"),
                    security=[],
                )
            },
            "/api/v1/auth/refresh": {
                "post": _op(
                    "Rotate a refresh token",
                    "refresh",
                    {
                        "200": json_content(
                            "TokenPair", "a new token pair; the presented refresh token is spent"
                        ),
                        **problems,
                    },
                    requestBody=json_body("RefreshRequest"),
                    security=[],
                )
            },
            "/api/v1/auth/logout": {
                "post": _op(
                    "Revoke the calling token and its session",
                    "logout",
                    {"204": {"description": "logged out"}, **problems},
                    requestBody=json_body("RefreshRequest", required=False),
                )
            },
            "/api/v1/me": {
                "get": _op("The caller", "me", {"200": json_content("User", "the account"), **problems})
            },
            "/api/v1/jobs": {
                "get": _op(
                    "The caller's jobs, newest first",
                    "listJobs",
                    {"200": json_content("JobPage", "a page of jobs"), **problems},
                    parameters=[
                        _query_param(
                            "status",
                            {"type": "string"},
                            "comma-separated: queued,running,succeeded,failed,canceled",
                        ),
                        _query_param("kind", {"type": "string"}, "comma-separated job kinds"),
                        _query_param(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                            "page size",
                        ),
                        _query_param("cursor", {"type": "string"}, "next_cursor of the previous page"),
                    ],
                )
            },
            "/api/v1/jobs/{id}": {
                "get": _op(
                    "One of the caller's jobs",
                    "getJob",
                    {"200": json_content("Job", "the job"), **problems},
                    parameters=[_JOB_ID],
                )
            },
            "/api/v1/jobs/{id}/cancel": {
                "post": _op(
                    "Ask the owning service to cancel a job",
                    "cancelJob",
                    {"202": json_content("Job", "cancel requested"), **problems},
                    parameters=[_JOB_ID],
                )
            },
            "/api/v1/ws": {
                "get": _op(
                    "WebSocket of live job updates: messages {type: 'job', job: Job}",
                    "jobsSocket",
                    {"101": {"description": "switching protocols"}, **problems},
                    parameters=[
                        _query_param(
                            "access_token",
                            {"type": "string"},
                            "the access token, for clients that cannot set headers",
                        )
                    ],
                )
            },
            "/.well-known/jwks.json": {
                "get": _op(
                    "Public keys that verify access tokens",
                    "jwks",
                    {"200": json_content("JWKS", "a JWKS document")},
                    security=[],
                )
            },
            "/api/v1/openapi.json": {
                "get": _op(
                    "This document, merged from every service",
                    "openapi",
                    {"200": {"description": "an OpenAPI 3.1 document"}},
                    security=[],
                )
            },
        },
    )
    return doc | {
        "servers": [{"url": server_url}],
        "tags": [{"name": "gateway", "description": "accounts, tokens, jobs"}],
    }


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

    def __init__(self, *, upstreams: Mapping[str, str], timeout_s: float = 2.0, ttl_s: float = 30.0) -> None:
        self.upstreams, self.timeout_s, self.ttl_s = dict(upstreams), timeout_s, ttl_s
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
            doc = merge(gateway_document(), dict(zip(names, fetched, strict=True)))
            self._cached = (time.monotonic(), doc)
            return doc
