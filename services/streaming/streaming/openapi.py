"""``GET /openapi.json``: one OpenAPI 3.1 document for the service, assembled from each half's paths."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from common import openapi
from common.http import json_response

OPENAPI_PARTS: web.AppKey[dict[str, Any]] = web.AppKey("openapi_parts", dict)


def add_openapi(
    app: web.Application, *, paths: Mapping[str, Any], schemas: Mapping[str, Any] | None = None
) -> None:
    """Add paths (and component schemas) to the service's document; the route is registered once."""
    parts = app.get(OPENAPI_PARTS)
    if parts is None:
        parts = {"paths": {}, "schemas": {}}
        app[OPENAPI_PARTS] = parts
        app.router.add_get("/openapi.json", openapi_handler)
    parts["paths"].update(copy.deepcopy(dict(paths)))
    parts["schemas"].update(copy.deepcopy(dict(schemas or {})))


def openapi_document(app: web.Application) -> dict[str, Any]:
    """The assembled OpenAPI 3.1 document."""
    parts = app.get(OPENAPI_PARTS) or {"paths": {}, "schemas": {}}
    return openapi.document(
        title="Reelforge streaming",
        version="1.0.0",
        paths=parts["paths"],
        schemas=parts["schemas"],
    )


async def openapi_handler(request: web.Request) -> web.Response:
    """Serve the document."""
    return json_response(openapi_document(request.app))
