"""The ASGI application: the endpoints of every resource, JSON errors, auth, access log."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.api import alerts, articles, feeds, health, subscriptions
from app.api.auth import AccessLog, BearerAuth
from app.api.common import ApiError, Endpoint, Handler, error_response, query
from app.api.deps import ApiDeps
from ingest.errors import NotFound, StoreError
from ingest.log import get_logger
from ingest.services.usecases.paging import BadCursor
from ingest.services.usecases.requests import Conflict, Invalid
from ingest.services.usecases.requests import Request as NoParameters

log = get_logger("app.api")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
}


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, **exc.details)


async def invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Invalid)
    code = "invalid_query" if exc.field == "query" and "position" in exc.details else "invalid"
    return error_response(422, code, str(exc), field=exc.field, **exc.details)


async def conflict(request: Request, exc: Exception) -> Response:
    return error_response(409, "conflict", str(exc))


async def bad_cursor(request: Request, exc: Exception) -> Response:
    return error_response(400, "bad_cursor", str(exc))


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (route, other method) in our error shape."""
    assert isinstance(exc, HTTPException)
    message = "no such resource" if exc.status_code == 404 else str(exc.detail)
    if exc.status_code == 405:
        message = f"method {request.method} is not allowed here"
    return error_response(
        exc.status_code, HTTP_CODES.get(exc.status_code, "error"), message, headers=exc.headers
    )


async def not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, "not_found", str(exc))


async def store_error(request: Request, exc: Exception) -> Response:
    log.error("api.store_error", path=request.url.path, error=str(exc))
    return error_response(503, "unavailable", "the database did not answer; try again")


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("api.error", path=request.url.path)
    return error_response(500, "internal", "internal error; the server log has the details")


async def openapi(request: Request) -> Response:
    from app.api.openapi import openapi_document

    return JSONResponse(openapi_document())


def all_endpoints() -> list[Endpoint]:
    document = Endpoint(
        "GET", "/openapi.json", openapi, "This document (OpenAPI 3.1)", response=dict, errors=(401, 422)
    )
    return [
        *feeds.endpoints,
        *subscriptions.endpoints,
        *articles.endpoints,
        *alerts.endpoints,
        *health.endpoints,
        document,
    ]


def _strict(ep: Endpoint) -> Handler:
    """The handler, refusing query parameters an endpoint without a query model does not take."""
    if ep.query is not None or ep.public:
        return ep.handler

    async def handler(request: Request) -> Response:
        if request.query_params:
            query(request, NoParameters)
        return await ep.handler(request)

    return handler


def all_routes() -> list[Route]:
    return [Route(ep.path, _strict(ep), methods=[ep.method]) for ep in all_endpoints()]


def create_app(
    deps: ApiDeps,
    *,
    token: str | None,
    extra_routes: Sequence[BaseRoute] = (),
    public_prefixes: tuple[str, ...] = (),
) -> Starlette:
    """The API over `deps`; `token` None turns authentication off (loopback only, see `ingest api`).

    `extra_routes` are mounted beside the resources; those under `public_prefixes` skip the
    bearer token because they check their callers themselves.
    """
    app = Starlette(
        routes=[*all_routes(), *extra_routes],
        middleware=[
            Middleware(AccessLog),
            Middleware(
                BearerAuth,
                token=token,
                metrics_public=deps.settings.metrics_public,
                public_prefixes=public_prefixes,
            ),
        ],
        exception_handlers={
            ApiError: api_error,
            Invalid: invalid,
            Conflict: conflict,
            BadCursor: bad_cursor,
            HTTPException: http_error,
            NotFound: not_found,
            StoreError: store_error,
            Exception: server_error,
        },
    )
    app.state.deps = deps
    return app
