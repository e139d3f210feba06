"""The OpenAPI 3.1 document, generated from the endpoints and the use cases' typed requests and views.

tests/test_api_fuzz.py checks that every route is documented and fuzzes the API from this
document, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import msgspec
from msgspec import Struct

from app.api.common import Endpoint

JSON = "application/json"
REF = "#/components/schemas/{name}"
ERRORS = {
    400: "bad JSON or a cursor this listing did not return",
    401: "missing or wrong token",
    404: "no such resource",
    409: "conflicts with the current state",
    413: "request body too large",
    422: "a field or parameter is invalid (unknown ones too)",
}


class ErrorDetail(Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    field: str | None = None
    position: int | None = None


class Error(Struct, frozen=True):
    """Every error answer: a stable code, a sentence, and the field or parameter when one is at fault."""

    error: ErrorDetail


def _content(schema: dict[str, Any], media: str = JSON) -> dict[str, Any]:
    return {media: {"schema": schema}}


def _parameters(ep: Endpoint, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": schema, "description": doc}
        for name, (schema, doc) in ep.path_params.items()
    ]
    if ep.query is not None:
        model = schemas[ep.query.__name__]
        for name, schema in model["properties"].items():
            schema = {k: v for k, v in schema.items() if k != "default"}
            if "anyOf" in schema:  # optional: the parameter is simply left out, never `null`
                schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
            doc = schema.pop("description", name)
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in model.get("required", ()),
                    "schema": schema,
                    "description": doc,
                }
            )
    return params


def _response(doc: str, kind: Any, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    if kind is None:
        return {"description": doc}
    if kind == "text":
        return {"description": doc, "content": _content({"type": "string"}, "text/plain")}
    return {"description": doc, "content": _content(refs[kind])}


def _operation(ep: Endpoint, refs: dict[Any, dict[str, Any]], schemas: dict[str, Any]) -> dict[str, Any]:
    responses = {str(ep.status): _response(ep.summary, ep.response, refs)}
    for status, (doc, kind) in ep.other.items():
        responses[str(status)] = _response(doc, kind, refs)
    for status in ep.errors:
        responses[str(status)] = _response(ERRORS[status], Error, refs)
    op: dict[str, Any] = {
        "summary": ep.summary,
        "operationId": ep.handler.__name__,
        "parameters": _parameters(ep, schemas),
        "responses": responses,
    }
    if ep.body is not None:
        op["requestBody"] = {"required": True, "content": _content(refs[ep.body])}
    if ep.public:
        op["security"] = []
    return op


def build_document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """OpenAPI 3.1 for `endpoints`: components from their types, one operation per endpoint."""
    kinds = {
        k for ep in endpoints for k in (ep.body, ep.query, ep.response, *(t for _, t in ep.other.values()))
    }
    types = [Error, *sorted((k for k in kinds if isinstance(k, type)), key=lambda t: t.__name__)]
    refs_list, schemas = msgspec.json.schema_components(types, ref_template=REF)
    refs = dict(zip(types, refs_list, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        path = ep.path.replace(":int", "")
        paths.setdefault(path, {})[ep.method.lower()] = _operation(ep, refs, schemas)
    for ep in endpoints:  # query models are parameters, not components
        if ep.query is not None and not any(ep.query in (e.body, e.response) for e in endpoints):
            schemas.pop(ep.query.__name__, None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "news-ingest",
            "version": "1",
            "description": "Feeds, subscriptions, articles, stories and alerts of the news ingestion "
            'service. Errors: {"error": {"code", "message"}}; unknown fields and parameters are 422.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "INGEST_API_TOKEN"}
            },
        },
        "paths": paths,
    }


@cache
def openapi_document() -> dict[str, Any]:
    """The document of the API's own endpoints (built once per process)."""
    from app.api.app import all_endpoints

    return build_document(all_endpoints())
