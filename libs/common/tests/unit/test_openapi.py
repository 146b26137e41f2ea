"""The route table builds a valid OpenAPI 3.1 document from the Structs it names."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any

import msgspec
from aiohttp import web
from openapi_spec_validator import validate

from common.errors import NotFound
from common.openapi import PROBLEM_SCHEMA, Api, Route, document
from common.pagination import Page, Paging


class ThingView(msgspec.Struct, kw_only=True):
    """A thing."""

    id: uuid.UUID
    name: str


class CreateThing(msgspec.Struct, forbid_unknown_fields=True):
    """Body of POST /things."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]


class ThingQuery(msgspec.Struct):
    """Filters."""

    sort: Annotated[str, msgspec.Meta(description="sort order")] = "name"


class UploadForm(msgspec.Struct):
    """A file and its title."""

    file: bytes
    title: str = ""


async def _handler(request: web.Request) -> web.Response:
    """Does a thing."""
    raise NotFound("thing")


def _api() -> Api:
    return Api(
        title="Reelforge things",
        description="Things.",
        routes=(
            Route("GET", "/api/v1/things", _handler, response=Page[ThingView], paging=Paging(20, 100)),
            Route(
                "POST",
                "/api/v1/things",
                _handler,
                body=CreateThing,
                response=ThingView,
                status=201,
                operation_id="createThing",
                errors={409: ["thing.exists"]},
            ),
            Route(
                "GET",
                "/api/v1/things/{thing_id}",
                _handler,
                response=ThingView,
                query=ThingQuery,
                operation_id="getThing",
            ),
            Route(
                "POST",
                "/api/v1/things/upload",
                _handler,
                form=UploadForm,
                response=ThingView,
                operation_id="upload",
            ),
            Route(
                "GET",
                "/files/{thing_id}/{path:.+}",
                _handler,
                public=True,
                raw={200: "the file"},
                operation_id="file",
            ),
            Route("OPTIONS", "/files/{thing_id}/{path:.+}", _handler, documented=False),
        ),
        security_schemes={"signature": {"type": "apiKey", "in": "header", "name": "X-Signature"}},
    )


def test_the_document_is_valid_openapi_3_1_built_from_the_structs() -> None:
    doc = _api().document()
    validate(doc)
    assert doc["info"] == {"title": "Reelforge things", "version": "1.0.0", "description": "Things."}
    schemas = doc["components"]["schemas"]
    assert {"Problem", "ThingView", "CreateThing", "Page_ThingView_"} <= set(schemas)
    assert schemas["CreateThing"]["properties"]["name"] == {"type": "string", "minLength": 1, "maxLength": 50}
    post = doc["paths"]["/api/v1/things"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateThing"
    }
    assert set(post["responses"]) == {"201", "400", "401", "409", "415", "422", "default"}
    assert post["summary"] == "Does a thing"
    assert "thing.exists" in post["responses"]["409"]["description"]


def test_parameters_come_from_the_path_the_paging_and_the_query_struct() -> None:
    doc = _api().document()
    listing = doc["paths"]["/api/v1/things"]["get"]
    assert [p["name"] for p in listing["parameters"]] == ["limit", "cursor"]
    assert listing["parameters"][0]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
    }
    one = doc["paths"]["/api/v1/things/{thing_id}"]["get"]
    assert one["parameters"][0] == {
        "name": "thing_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    assert one["parameters"][1]["name"] == "sort" and one["parameters"][1]["description"] == "sort order"
    files = doc["paths"]["/files/{thing_id}/{path}"]
    assert set(files) == {"get"}, "an undocumented route stays out"
    assert files["get"]["security"] == [] and "401" not in files["get"]["responses"]


def test_a_form_documents_its_bytes_fields_as_file_parts() -> None:
    body = _api().document()["paths"]["/api/v1/things/upload"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["file"] == {"type": "string", "contentMediaType": "application/octet-stream"}
    assert schema["required"] == ["file"]


def test_the_shared_components_are_always_there_and_bearer_is_the_default() -> None:
    doc = _api().document()
    components = doc["components"]
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


def test_documents_share_no_state() -> None:
    doc: dict[str, Any] = document(title="t", version="1", paths={}, schemas={})
    validate(doc)
    assert "description" not in doc["info"]
    doc["components"]["schemas"]["Problem"]["properties"].clear()
    assert PROBLEM_SCHEMA["properties"]


def test_an_idempotent_route_documents_its_header_and_conflicts() -> None:
    plain = _api()
    api = dataclasses.replace(
        plain, routes=[dataclasses.replace(r, idempotent=r.method == "POST") for r in plain.routes]
    )
    doc = api.document()
    validate(doc)
    op = doc["paths"]["/api/v1/things"]["post"]
    [header] = [p for p in op["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and header["required"] is False
    assert op["responses"]["409"]["description"].endswith("idempotency.key_reused, idempotency.in_progress")
    assert "idempotency.key_invalid" in op["responses"]["400"]["description"]
