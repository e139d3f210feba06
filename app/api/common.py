"""What every resource module shares: endpoints described once (route and OpenAPI operation),
errors in one shape, typed bodies and query parameters, JSON answers.

Errors are `{"error": {"code", "message", ...}}`. Bodies and query parameters become the use
cases' typed requests (`ingest.services.usecases.requests`): an unknown field or parameter is a
422 naming it, as is anything the database could not hold, so bad input is a 4xx and never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.api.deps import ApiDeps
from ingest.services.usecases.requests import MAX_ID, parse, parse_query
from ingest.services.usecases.views import to_json

T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]
NO_STORE = {"Cache-Control": "no-store"}  # answers that carry a subscription secret


@dataclass(frozen=True)
class Endpoint:
    """One operation: the route Starlette serves and the OpenAPI operation generated from its types.

    `response` is the answer's type (None: no body; "text": plain text), `body` and `query`
    the request types; `path_params` the JSON schema of each path parameter.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    status: int = 200
    response: Any = None
    body: type | None = None
    query: type | None = None
    path_params: Mapping[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    errors: tuple[int, ...] = (401,)
    public: bool = False  # no token; probes may add any query parameter
    other: Mapping[int, tuple[str, Any]] = field(default_factory=dict)  # more answers: status -> (doc, type)


class ApiError(Exception):
    """An answer other than success: HTTP status, a stable code, a sentence, optional details."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None, **details: Any
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **details}},
        status_code=status,
        headers=dict(headers or {}),
    )


def answer(view: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A view as JSON (datetimes ISO 8601 UTC)."""
    return Response(to_json(view), status_code=status, media_type="application/json", headers=headers)


def deps(request: Request) -> ApiDeps:
    return request.app.state.deps  # type: ignore[no-any-return]


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (database, DNS, Redis) off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def read_json(request: Request) -> Any:
    """The body as a JSON object: 413 past the size cap (checked while reading), 400 if not JSON."""
    cap = deps(request).settings.api_max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, "too_large", f"request body is larger than {cap} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ApiError(413, "too_large", f"request body is larger than {cap} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "request body must be a JSON object")
    return body


async def body(request: Request, kind: type[T]) -> T:
    return parse(kind, await read_json(request))


def query(request: Request, kind: type[T]) -> T:
    return parse_query(kind, request.query_params.multi_items())


def path_id(request: Request, name: str) -> str:
    """A string id from the path; one no row could have is simply not found."""
    value = request.path_params[name]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "\x00"
    if "\x00" in value or len(value) > 200:
        raise ApiError(404, "not_found", f"no such {name.removesuffix('_id')}")
    return str(value)


def path_int(request: Request, name: str) -> int:
    value = int(request.path_params[name])
    if not 1 <= value <= MAX_ID:
        raise ApiError(404, "not_found", f"no {name.removesuffix('_id')} with id {value}")
    return value


ID_PARAM = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
STR_PARAM = {"type": "string"}
