"""The shared OpenAPI skeleton: a document built from it is valid and carries Problem and bearer auth."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from common.openapi import (
    PROBLEM_SCHEMA,
    document,
    json_body,
    json_content,
    problem_ref,
    problem_response,
    uuid_path_param,
)


def _small() -> dict[str, Any]:
    return document(
        title="Reelforge things",
        version="1.0.0",
        description="Things.",
        paths={
            "/api/v1/things": {
                "get": {
                    "operationId": "listThings",
                    "security": [],
                    "responses": {
                        "200": json_content({"type": "array", "items": {"type": "string"}}, "names")
                    },
                },
                "post": {
                    "operationId": "createThing",
                    "requestBody": json_body("Thing"),
                    "responses": {
                        "201": json_content("Thing", "the thing"),
                        "401": problem_ref(),
                        "422": problem_response("thing.invalid"),
                    },
                },
            },
            "/api/v1/things/{thing_id}": {
                "parameters": [uuid_path_param("thing_id")],
                "get": {"operationId": "getThing", "responses": {"200": json_content("Thing", "the thing")}},
            },
        },
        schemas={"Thing": {"type": "object", "properties": {"name": {"type": "string"}}}},
        security_schemes={"signature": {"type": "apiKey", "in": "header", "name": "X-Signature"}},
    )


def test_a_small_document_is_valid_openapi_3_1() -> None:
    doc = _small()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert doc["info"] == {"title": "Reelforge things", "version": "1.0.0", "description": "Things."}


def test_the_shared_components_are_always_there_and_bearer_is_the_default() -> None:
    doc = _small()
    components = doc["components"]
    assert set(components["schemas"]) == {"Problem", "Thing"}
    assert components["responses"]["Problem"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert components["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    assert "signature" in components["securitySchemes"]
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["paths"]["/api/v1/things"]["get"]["security"] == []


def test_an_empty_description_is_left_out_and_documents_share_no_state() -> None:
    doc = document(title="t", version="1", paths={}, schemas={})
    validate(doc)
    assert "description" not in doc["info"]
    doc["components"]["schemas"]["Problem"]["properties"].clear()
    assert PROBLEM_SCHEMA["properties"]
    assert (
        document(title="t", version="1", paths={}, schemas={})["components"]["schemas"]["Problem"]
        == PROBLEM_SCHEMA
    )
