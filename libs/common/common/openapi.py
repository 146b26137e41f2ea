"""A service's HTTP contract from types: one route table registers the routes and builds the OpenAPI 3.1 document.

```python
ROUTES = (
    Route("POST", "/api/v1/billing/topups", create_topup, body=TopupRequest, response=OrderView, status=201,
          errors={422: [BillingError.INVALID_AMOUNT]}),
    Route("GET", "/api/v1/billing/prices", prices, response=PriceListView, public=True),
)
API = Api(title="Reelforge billing", description="...", routes=ROUTES)
add_api(app, API)   # registers every route and GET /openapi.json (the document built from the same table)
```

Request and response bodies are msgspec Structs (``msgspec.json.schema_components`` gives the component schemas),
so the document cannot drift from the code: ``read_json(request, T)`` refuses (TypeError, a 500 the architecture
test sees) a ``T`` other than the route's declared ``body``, and ``tests/architecture`` proves that every registered
route is documented and that real responses validate against the document.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from . import idempotency
from .errors import CommonCode
from .http import DECLARED_BODY, DECLARED_QUERY, PROBLEM_JSON, json_response
from .pagination import Paging
from .runtime import periodic
from .service import POOL

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{name}"

#: The body of every error (``common.errors.CodedError`` rendered by ``common.http``), ``components.schemas.Problem``.
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

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": "a retry with the same key and request gets the first answer (kept 24 h per user);"
    " the same key with another request is 409 idempotency.key_reused",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")
_UUID = {"type": "string", "format": "uuid"}


def schema_ref(name: str) -> dict[str, str]:
    """``{"$ref": "#/components/schemas/<name>"}``."""
    return {"$ref": SCHEMA_REF.format(name=name)}


def problem_response(description: str) -> dict[str, Any]:
    """A problem+json response that says which errors (codes) it stands for."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema_ref("Problem")}}}


@dataclass(frozen=True)
class Route:
    """One operation: where it is, who answers it, and the types of what goes in and out.

    ``response`` is any type msgspec describes (a Struct, ``Page[VideoView]``); None means no JSON body (204, or
    ``raw`` responses such as files). ``responses`` adds other answers, ``{200: (ImportAccepted, "a repeat")}``.
    ``errors`` names the codes each status can carry (auth, body and paging errors are added by themselves).
    ``form`` is a Struct describing a ``multipart/form-data`` body (its ``bytes`` fields are file parts).
    ``path_types`` overrides a path parameter's type (a name ending in ``id`` is a UUID by default).
    ``documented=False`` registers a route the public contract leaves out (CORS preflights, catch-alls).
    ``idempotent=True`` accepts an ``Idempotency-Key`` header (``common.idempotency``): a retry gets the first answer.
    """

    method: str
    path: str
    handler: Handler
    response: Any = None
    status: int = 200
    body: Any = None
    body_required: bool = True
    form: Any = None
    query: Any = None
    paging: Paging | None = None
    public: bool = False
    security: tuple[str, ...] = ()
    errors: Mapping[int, Sequence[str]] = field(default_factory=dict)
    responses: Mapping[int, tuple[Any, str]] = field(default_factory=dict)
    raw: Mapping[int, str] = field(default_factory=dict)
    path_types: Mapping[str, Any] = field(default_factory=dict)
    headers: Sequence[str] = ()
    summary: str = ""
    description: str = ""
    operation_id: str = ""
    tags: tuple[str, ...] = ()
    documented: bool = True
    idempotent: bool = False

    @property
    def doc_path(self) -> str:
        """The path as OpenAPI writes it (``{path:.+}`` → ``{path}``)."""
        return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", self.path)

    @property
    def path_params(self) -> list[str]:
        """The names of the path's parameters, in order."""
        return _PATH_PARAM.findall(self.path)


@dataclass(frozen=True)
class Api:
    """A service's route table and the words around its document."""

    title: str
    routes: Sequence[Route]
    description: str = ""
    version: str = "1.0.0"
    security_schemes: Mapping[str, Any] = field(default_factory=dict)
    tags: Sequence[Mapping[str, str]] = ()

    def document(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the documented routes."""
        return build_document(self)


API: web.AppKey[Api] = web.AppKey("api", Api)


def _wrap(route: Route) -> Handler:
    inner = idempotency.idempotent(route.handler) if route.idempotent else route.handler
    if route.body is None and route.query is None:
        return inner

    async def handler(request: web.Request) -> web.StreamResponse:
        if route.body is not None:
            request[DECLARED_BODY] = route.body
        if route.query is not None:
            request[DECLARED_QUERY] = route.query
        return await inner(request)

    handler.__name__ = route.handler.__name__
    handler.__doc__ = route.handler.__doc__
    return handler


async def _sweep_idempotency_keys(app: web.Application) -> None:
    await idempotency.sweep(app[POOL])


def add_api(app: web.Application, api: Api) -> None:
    """Register every route of ``api`` and ``GET /openapi.json`` (the document built from the same table)."""
    app[API] = api
    for route in api.routes:
        if route.method == "GET":  # and HEAD, as aiohttp's add_get does
            app.router.add_get(route.path, _wrap(route))
        else:
            app.router.add_route(route.method, route.path, _wrap(route))
    document = api.document()

    async def openapi(request: web.Request) -> web.Response:
        """This service's OpenAPI 3.1 document."""
        return json_response(document)

    app.router.add_get("/openapi.json", openapi)
    if any(route.idempotent for route in api.routes):
        app.cleanup_ctx.append(
            periodic("idempotency_sweep", 3600.0, _sweep_idempotency_keys, run_at_start=True)
        )


# -- the document -----------------------------------------------------------------------------------------------


def _summary(route: Route) -> str:
    if route.summary:
        return route.summary
    doc = (route.handler.__doc__ or "").strip().splitlines()
    return doc[0].rstrip(".") if doc else route.handler.__name__.replace("_", " ")


def _component_types(api: Api) -> list[Any]:
    types: list[Any] = []
    for route in api.routes:
        if not route.documented:
            continue
        for t in (route.response, route.body, *(t for t, _ in route.responses.values())):
            if t is not None and t not in types:
                types.append(t)
    return types


def _inline(struct: Any) -> dict[str, Any]:
    """A Struct's own schema, with its nested component schemas referenced from ``components``."""
    (ref,), components = msgspec.json.schema_components([struct], ref_template=SCHEMA_REF)
    return copy.deepcopy(components[ref["$ref"].rsplit("/", 1)[1]])


def _query_parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    if route.query is not None:
        schema = _inline(route.query)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
            }
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    if route.paging is not None:
        params.extend(route.paging.parameters())
    return params


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    out = []
    for name in route.path_params:
        if name in route.path_types:
            schema = msgspec.json.schema(route.path_types[name])
        elif name == "id" or name.endswith("_id"):
            schema = dict(_UUID)
        else:
            schema = {"type": "string"}
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def _form_schema(form: Any) -> dict[str, Any]:
    schema = _inline(form)
    for name, info in zip(form.__struct_fields__, msgspec.structs.fields(form), strict=True):
        if info.type is bytes:  # a file part (the handler streams it)
            schema["properties"][name] = {"type": "string", "contentMediaType": "application/octet-stream"}
    return schema


def _errors(route: Route) -> dict[int, list[str]]:
    errors: dict[int, list[str]] = {status: [str(c) for c in codes] for status, codes in route.errors.items()}

    def add(status: int, *codes: str) -> None:
        listed = errors.setdefault(status, [])
        listed.extend(str(c) for c in codes if str(c) not in listed)

    if not route.public and not route.security:
        add(401, CommonCode.MISSING_TOKEN, CommonCode.INVALID_TOKEN, CommonCode.TOKEN_EXPIRED)
    if route.body is not None:
        add(400, CommonCode.MALFORMED_JSON, CommonCode.INVALID_CHARACTERS)
        add(415, CommonCode.UNSUPPORTED_MEDIA_TYPE)
        add(422, CommonCode.VALIDATION)
    if route.form is not None:
        add(400, CommonCode.MALFORMED_MULTIPART, CommonCode.INVALID_CHARACTERS)
        add(415, CommonCode.UNSUPPORTED_MEDIA_TYPE)
        add(422, CommonCode.VALIDATION)
    if route.query is not None or route.paging is not None:
        add(422, CommonCode.VALIDATION)
    if route.idempotent:
        add(400, CommonCode.IDEMPOTENCY_KEY_INVALID)
        add(409, CommonCode.IDEMPOTENCY_KEY_REUSED, CommonCode.IDEMPOTENCY_IN_PROGRESS)
    return errors


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(route: Route, refs: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id or route.handler.__name__,
        "summary": _summary(route),
    }
    if route.description:
        op["description"] = route.description
    if route.tags:
        op["tags"] = list(route.tags)
    if route.public:
        op["security"] = []
    elif route.security:
        op["security"] = [{name: []} for name in route.security]
    params = _path_parameters(route) + _query_parameters(route)
    params += [
        {"name": h, "in": "header", "required": False, "schema": {"type": "string"}} for h in route.headers
    ]
    if route.idempotent:
        params.append(IDEMPOTENCY_KEY_PARAMETER)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": refs[route.body]}},
        }
    if route.form is not None:  # alone, or another form of the same request as the JSON body
        body = op.setdefault("requestBody", {"required": True, "content": {}})
        body["content"]["multipart/form-data"] = {"schema": _form_schema(route.form)}
    op["responses"] = _responses(route, refs)
    return op


def _responses(route: Route, refs: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    what = _summary(route)
    if route.response is not None:
        responses[str(route.status)] = _json(refs[route.response], what)
    elif not route.raw:
        responses[str(route.status)] = {"description": what}
    for status, (type_, description) in route.responses.items():
        responses[str(status)] = _json(refs[type_], description)
    for status, description in route.raw.items():
        responses[str(status)] = {"description": description}
    for status, codes in sorted(_errors(route).items()):
        responses[str(status)] = problem_response(", ".join(codes))
    responses["default"] = {"$ref": "#/components/responses/Problem"}
    return responses


def build_document(api: Api) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``api``'s documented routes (component schemas from their types)."""
    types = _component_types(api)
    refs_list, components = msgspec.json.schema_components(types, ref_template=SCHEMA_REF)
    refs = dict(zip(types, refs_list, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for route in api.routes:
        if route.documented:
            paths.setdefault(route.doc_path, {})[route.method.lower()] = _operation(route, refs)
    doc = document(
        title=api.title,
        version=api.version,
        description=api.description,
        paths=paths,
        schemas=components,
        security_schemes=api.security_schemes,
    )
    if api.tags:
        doc["tags"] = [dict(t) for t in api.tags]
    return doc


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
