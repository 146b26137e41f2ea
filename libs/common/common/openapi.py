"""OpenAPI 3.1 pieces every service's document shares: the RFC 9457 Problem, bearer auth, helpers, the skeleton."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .http import PROBLEM_JSON

OPENAPI_VERSION = "3.1.0"

#: The body of every error (``common.http.Problem``), as ``components.schemas.Problem``.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "stable machine-readable error code"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
    },
}

#: ``components.securitySchemes.bearerAuth``: the gateway's access token (``common.auth``).
BEARER_SECURITY_SCHEME: dict[str, Any] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
BEARER_AUTH = "bearerAuth"


def schema_ref(name: str) -> dict[str, str]:
    """``{"$ref": "#/components/schemas/<name>"}``."""
    return {"$ref": f"#/components/schemas/{name}"}


def problem_ref() -> dict[str, str]:
    """A response that is ``components.responses.Problem`` (for a status whose cause needs no words)."""
    return {"$ref": "#/components/responses/Problem"}


def problem_response(description: str) -> dict[str, Any]:
    """A problem+json response that says which errors (codes) it stands for."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema_ref("Problem")}}}


def _schema(schema_or_ref: str | Mapping[str, Any]) -> dict[str, Any]:
    return schema_ref(schema_or_ref) if isinstance(schema_or_ref, str) else dict(schema_or_ref)


def json_content(schema_or_ref: str | Mapping[str, Any], description: str) -> dict[str, Any]:
    """A JSON response: ``schema_or_ref`` is a component schema's name or an inline schema."""
    return {"description": description, "content": {"application/json": {"schema": _schema(schema_or_ref)}}}


def json_body(schema_or_ref: str | Mapping[str, Any], *, required: bool = True) -> dict[str, Any]:
    """A JSON request body: ``schema_or_ref`` is a component schema's name or an inline schema."""
    return {"required": required, "content": {"application/json": {"schema": _schema(schema_or_ref)}}}


def uuid_path_param(name: str) -> dict[str, Any]:
    """A required path parameter that is a UUID."""
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def document(
    *,
    title: str,
    version: str,
    paths: Mapping[str, Any],
    schemas: Mapping[str, Any],
    description: str = "",
    security_schemes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An OpenAPI 3.1 document whose operations need the bearer token unless they say ``security: []``.

    Components always hold ``schemas.Problem``, ``responses.Problem`` and ``securitySchemes.bearerAuth``;
    ``security_schemes`` adds others (e.g. a webhook signature).
    """
    info = {"title": title, "version": version} | ({"description": description} if description else {})
    return {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": copy.deepcopy(dict(paths)),
        "components": {
            "schemas": copy.deepcopy({"Problem": PROBLEM_SCHEMA, **schemas}),
            "responses": {"Problem": problem_response("an RFC 9457 problem with a stable code")},
            "securitySchemes": copy.deepcopy(
                {BEARER_AUTH: BEARER_SECURITY_SCHEME, **(security_schemes or {})}
            ),
        },
        "security": [{BEARER_AUTH: []}],
    }
