"""Every service's OpenAPI document is valid and names only security schemes it declares.

openapi-spec-validator does not catch an undeclared scheme name in an operation's ``security``; a client
generator would. The gateway's aggregated document is built from these.
"""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate


def _streaming() -> dict[str, Any]:
    from streaming.api import API

    return API.document()


def _billing() -> dict[str, Any]:
    from billing.api import API

    return API.document()


def _ingest() -> dict[str, Any]:
    from ingest.api import API

    return API.document()


def _gateway() -> dict[str, Any]:
    from gateway.api import gateway_document

    return gateway_document()


@pytest.mark.parametrize("build", [_gateway, _ingest, _streaming, _billing], ids=lambda f: f.__name__[1:])
def test_document_is_valid_and_its_security_names_are_declared(build: Any) -> None:
    doc = build()
    validate(doc)
    declared = set(doc["components"]["securitySchemes"])
    operations = [op for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)]
    used = {name for op in operations for req in op.get("security", []) for name in req}
    used |= {name for req in doc.get("security", []) for name in req}
    assert used <= declared, f"undeclared security schemes: {used - declared}"
    assert operations, "a service with a public API documents it"


def test_the_gateways_aggregate_of_the_real_documents_is_valid_and_complete() -> None:
    """What GET /api/v1/openapi.json serves when every service answers: the real documents, merged."""
    from gateway.api import gateway_document
    from gateway.openapi import merge

    docs = {"ingest": _ingest(), "streaming": _streaming(), "billing": _billing()}
    merged = merge(gateway_document(), docs)
    validate(merged)
    assert "x-unavailable" not in merged or not merged["x-unavailable"]
    for name, doc in docs.items():
        missing = set(doc["paths"]) - set(merged["paths"])
        # every public path a service documents is in the aggregate (internal ones are not routed by the gateway)
        assert all(not p.startswith("/api/v1/") for p in missing), (name, sorted(missing))
    declared = set(merged["components"]["securitySchemes"])
    used = {
        name
        for item in merged["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
        for req in op.get("security", [])
        for name in req
    }
    assert used <= declared, f"undeclared security schemes: {used - declared}"
    ids = [
        op["operationId"] for item in merged["paths"].values() for op in item.values() if isinstance(op, dict)
    ]
    assert len(ids) == len(set(ids)), (
        "operationIds are unique across the whole API (client generators need it)"
    )
