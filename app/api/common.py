"""What every resource module shares: errors, body and parameter parsing, cursors, JSON shapes.

Errors are one shape, `{"error": {"code", "message", ...}}`, raised as
`ApiError` anywhere in a handler. Every input is checked before it reaches
the database: strings that PostgreSQL or UTF-8 cannot hold (NUL, lone
surrogates) and integers beyond BIGINT are refused here, so bad input is a
4xx and never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from app.api.deps import ApiDeps
from ingest.models import Alert, Article, Feed, Subscription, iso, parse_iso

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID = 2**63 - 1
T = TypeVar("T")


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


def invalid(field: str, message: str, **details: Any) -> ApiError:
    return ApiError(422, "invalid", f"{field}: {message}", field=field, **details)


def deps(request: Request) -> ApiDeps:
    return request.app.state.deps  # type: ignore[no-any-return]


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking work (database, DNS, Redis) off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


# -- request bodies -------------------------------------------------------------


async def read_json(request: Request) -> dict[str, Any]:
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


def check_fields(body: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise invalid(unknown[0], f"unknown field; allowed: {', '.join(allowed)}")


def text(value: Any, field: str, *, max_len: int, required: bool = False) -> str | None:
    """A non-empty string the database can store, or None when absent and optional."""
    if value is None:
        if required:
            raise invalid(field, "is required")
        return None
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if not value.strip():
        raise invalid(field, "must not be empty")
    if len(value) > max_len:
        raise invalid(field, f"is longer than {max_len} characters")
    if "\x00" in value:
        raise invalid(field, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(field, "is not valid Unicode text") from None
    return value


def integer(value: Any, field: str, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "must be an integer")
    if not minimum <= value <= maximum:
        raise invalid(field, f"must be between {minimum} and {maximum}")
    return value


# -- query and path parameters ----------------------------------------------------


def query_text(request: Request, name: str, *, max_len: int = 200) -> str | None:
    raw = request.query_params.get(name)
    return None if raw is None or raw == "" else text(raw, name, max_len=max_len)


def query_int(request: Request, name: str, *, minimum: int = 1, maximum: int = MAX_ID) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, "must be an integer") from None
    return integer(value, name, minimum=minimum, maximum=maximum)


def query_time(request: Request, name: str) -> datetime | None:
    raw = query_text(request, name, max_len=64)
    if raw is None:
        return None
    try:
        value = parse_iso(raw)
        return value.astimezone(UTC) if value else None
    except (ValueError, OverflowError):
        raise invalid(name, "must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z") from None


def page_limit(request: Request) -> int:
    return query_int(request, "limit", maximum=MAX_LIMIT) or DEFAULT_LIMIT


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


# -- cursors: opaque to clients, validated strictly on the way back in ------------------


def encode_cursor(kind: str, *key: Any) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(request: Request, kind: str, types: tuple[type, ...]) -> list[Any] | None:
    """The key inside `cursor` (None on the first page); 400 if it is not one we issued for `kind`."""
    raw = request.query_params.get("cursor")
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        data = None
    if (
        not isinstance(data, list)
        or len(data) != len(types) + 1
        or data[0] != kind
        or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(data[1:], types, strict=True))
    ):
        raise ApiError(400, "bad_cursor", "cursor is not one this listing returned")
    return data[1:]


def cursor_time(value: str) -> datetime:
    try:
        parsed = parse_iso(value)
        parsed = parsed.astimezone(UTC) if parsed else None
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise ApiError(400, "bad_cursor", "cursor is not one this listing returned")
    return parsed


def page(items: list[dict[str, Any]], next_cursor: str | None) -> JSONResponse:
    return JSONResponse({"items": items, "next_cursor": next_cursor})


# -- resources as JSON ------------------------------------------------------------


def _iso_values(data: dict[str, Any]) -> dict[str, Any]:
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in data.items()}


def feed_json(feed: Feed) -> dict[str, Any]:
    return _iso_values(asdict(feed))


def subscription_json(sub: Subscription) -> dict[str, Any]:
    data = _iso_values(asdict(sub))
    data.pop("secret")
    return data


def article_json(article: Article) -> dict[str, Any]:
    return {
        **article.to_dict(),
        "feed_id": article.feed_id,
        "author": article.author,
        "fetched_at": iso(article.fetched_at),
        "updated": article.updated,
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    return _iso_values(asdict(alert))


async def public_url(request: Request, url: str, field: str) -> None:
    """422 unless `url` is http(s) and resolves only to public (or allowed) addresses (SSRF guard)."""
    from ingest.errors import FetchError
    from ingest.net.guard import check_url

    try:
        await call(check_url, url, deps(request).settings.allowed_networks)
    except FetchError as exc:
        raise invalid(field, exc.reason) from None
    except ValueError as exc:
        raise invalid(field, f"not a valid URL: {exc}") from None
