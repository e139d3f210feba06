"""The OpenAPI 3.1 document, written by hand next to the routes it describes.

tests/test_api.py checks that every route is documented and fuzzes the API
from this document, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

from app.api.common import MAX_ID, MAX_LIMIT

JSON = "application/json"
NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


SCHEMAS: dict[str, Any] = {
    "Error": obj(
        ["error"],
        error=obj(
            ["code", "message"],
            code={"type": "string"},
            message={"type": "string"},
            field={"type": "string"},
            position={"type": "integer"},
        ),
    ),
    "Feed": obj(
        ["id", "url", "status", "consecutive_errors"],
        id={"type": "integer"},
        url={"type": "string"},
        title=NULLABLE_STR,
        interval={"type": ["integer", "null"]},
        etag=NULLABLE_STR,
        last_modified=NULLABLE_STR,
        status={"type": "string", "enum": ["active", "disabled", "gone"]},
        last_polled_at=NULLABLE_TIME,
        last_success_at=NULLABLE_TIME,
        last_error=NULLABLE_STR,
        consecutive_errors={"type": "integer"},
        next_poll_at=NULLABLE_TIME,
        created_at=NULLABLE_TIME,
    ),
    "NewFeed": {
        **obj(
            ["url"],
            url={"type": "string", "minLength": 1, "maxLength": 2000},
            interval={"type": "integer", "minimum": 60, "maximum": 30 * 86400},
        ),
        "additionalProperties": False,
    },
    "Subscription": obj(
        ["id", "name", "query", "webhook", "status"],
        id={"type": "string"},
        name={"type": "string"},
        query={"type": "string"},
        webhook={"type": "string"},
        status={"type": "string", "enum": ["active", "paused", "disabled"]},
        status_reason=NULLABLE_STR,
        created_at=NULLABLE_TIME,
    ),
    "NewSubscription": {
        **obj(
            ["query", "webhook"],
            name={"type": "string", "minLength": 1, "maxLength": 200},
            query={"type": "string", "minLength": 1, "maxLength": 2000},
            webhook={"type": "string", "minLength": 1, "maxLength": 2000},
            secret={
                "type": "string",
                "description": "whsec_ + base64 of >= 24 bytes; generated when omitted",
            },
        ),
        "additionalProperties": False,
    },
    "SubscriptionChange": {
        **obj(
            [],
            name={"type": "string", "minLength": 1, "maxLength": 200},
            query={"type": "string", "minLength": 1, "maxLength": 2000},
            webhook={"type": "string", "minLength": 1, "maxLength": 2000},
            secret={"type": "string"},
            status={"type": "string", "enum": ["active", "paused"]},
        ),
        "additionalProperties": False,
    },
    "SubscriptionWithSecret": {"allOf": [ref("Subscription"), obj(["secret"], secret={"type": "string"})]},
    "RotatedSecret": obj(
        ["subscription", "secret", "previous_secret_expires_at"],
        subscription=ref("Subscription"),
        secret={"type": "string"},
        previous_secret_expires_at={"type": "string", "format": "date-time"},
    ),
    "Article": obj(
        ["id", "title", "text", "language", "story_id", "feed_id", "fetched_at"],
        id={"type": "string"},
        url=NULLABLE_STR,
        title={"type": "string"},
        text={"type": "string"},
        summary=NULLABLE_STR,
        language={"type": "string"},
        language_confidence={"type": "number"},
        published_at=NULLABLE_TIME,
        feed_url={"type": "string"},
        story_id={"type": "string"},
        feed_id={"type": "integer"},
        author=NULLABLE_STR,
        fetched_at={"type": "string", "format": "date-time"},
        updated={"type": "boolean"},
    ),
    "Story": obj(
        ["id", "article", "copies"],
        id={"type": "string"},
        article=ref("Article"),
        copies={"type": "array", "items": ref("Article")},
    ),
    "Alert": obj(
        ["id", "subscription_id", "story_id", "article_id", "status", "attempts"],
        id={"type": "string", "description": "the webhook-id"},
        subscription_id={"type": "string"},
        story_id={"type": "string"},
        article_id={"type": "string"},
        matched_terms={"type": "array", "items": {"type": "string"}},
        status={"type": "string", "enum": ["pending", "delivered", "failed"]},
        attempts={"type": "integer"},
        next_attempt_at=NULLABLE_TIME,
        last_error=NULLABLE_STR,
        created_at=NULLABLE_TIME,
        delivered_at=NULLABLE_TIME,
    ),
    "Ready": obj(
        ["status", "checks"],
        status={"type": "string", "enum": ["ok", "unavailable"]},
        checks={"type": "object", "additionalProperties": {"type": "string"}},
    ),
}
for _name in ("Feed", "Subscription", "Article", "Alert"):
    SCHEMAS[f"{_name}Page"] = obj(
        ["items", "next_cursor"],
        items={"type": "array", "items": ref(_name)},
        next_cursor={"type": ["string", "null"], "description": "pass as `cursor` for the next page"},
    )

ERRORS = {
    "400": "bad JSON or a cursor this listing did not return",
    "401": "missing or wrong token",
    "404": "no such resource",
    "409": "conflicts with the current state",
    "413": "request body too large",
    "422": "a field or parameter is invalid",
}


def param(name: str, where: str, schema: dict[str, Any], doc: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema,
        "description": doc,
    }


PAGING = [
    param(
        "limit",
        "query",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        f"items per page (default 50, at most {MAX_LIMIT})",
    ),
    param("cursor", "query", {"type": "string"}, "`next_cursor` of the previous page"),
]
FEED_ID = param("feed_id", "path", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "feed id")
SUB_ID = param("subscription_id", "path", {"type": "string"}, "subscription id (`sub_...`)")
ALERT_ID = param("alert_id", "path", {"type": "string"}, "alert id, the webhook-id (`msg_...`)")


def op(
    summary: str,
    ok: str,
    schema: str | None,
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | None = None,
    errors: tuple[str, ...] = ("401",),
    secured: bool = True,
    media: str = JSON,
) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": summary}}
    if schema is not None:
        responses[ok]["content"] = {media: {"schema": ref(schema) if media == JSON else {"type": "string"}}}
    for code in errors:
        responses[code] = {"description": ERRORS[code], "content": {JSON: {"schema": ref("Error")}}}
    operation: dict[str, Any] = {"summary": summary, "parameters": params or [], "responses": responses}
    if body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": ref(body)}}}
    if not secured:
        operation["security"] = []
    return operation


ARTICLE_FILTERS = [
    param("language", "query", {"type": "string", "maxLength": 16}, "ISO 639-1 code, e.g. `en`"),
    param("feed", "query", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "feed id"),
    param("story", "query", {"type": "string"}, "story id"),
    param("since", "query", {"type": "string", "format": "date-time"}, "fetched at or after"),
    param("until", "query", {"type": "string", "format": "date-time"}, "fetched before"),
    param(
        "q",
        "query",
        {"type": "string", "maxLength": 500},
        "full-text search: every word must occur in the title or text; results best first",
    ),
]

PATHS: dict[str, Any] = {
    "/feeds": {
        "get": op(
            "List feeds with their fetch state",
            "200",
            "FeedPage",
            params=PAGING,
            errors=("400", "401", "422"),
        ),
        "post": op(
            "Add a feed (http(s), public address only)",
            "201",
            "Feed",
            body="NewFeed",
            errors=("400", "401", "409", "413", "422"),
        ),
    },
    "/feeds/{feed_id}": {
        "get": op(
            "A feed and its state: last success, last error, consecutive errors, next poll",
            "200",
            "Feed",
            params=[FEED_ID],
            errors=("401", "404"),
        ),
        "delete": op(
            "Remove a feed (its stored articles stay)", "204", None, params=[FEED_ID], errors=("401", "404")
        ),
    },
    "/subscriptions": {
        "get": op(
            "List subscriptions", "200", "SubscriptionPage", params=PAGING, errors=("400", "401", "422")
        ),
        "post": op(
            "Add a subscription; the answer carries its secret (shown only here)",
            "201",
            "SubscriptionWithSecret",
            body="NewSubscription",
            errors=("400", "401", "409", "413", "422"),
        ),
    },
    "/subscriptions/{subscription_id}": {
        "get": op("A subscription", "200", "Subscription", params=[SUB_ID], errors=("401", "404")),
        "patch": op(
            "Change name, query, webhook, secret (at once, no grace) or status",
            "200",
            "Subscription",
            params=[SUB_ID],
            body="SubscriptionChange",
            errors=("400", "401", "404", "413", "422"),
        ),
        "delete": op(
            "Remove a subscription and its alerts", "204", None, params=[SUB_ID], errors=("401", "404")
        ),
    },
    "/subscriptions/{subscription_id}/rotate-secret": {
        "post": op(
            "New secret; the old one also signs until previous_secret_expires_at",
            "200",
            "RotatedSecret",
            params=[SUB_ID],
            errors=("401", "404"),
        )
    },
    "/articles": {
        "get": op(
            "List stored articles newest first, or search them (`q`)",
            "200",
            "ArticlePage",
            params=[*ARTICLE_FILTERS, *PAGING],
            errors=("400", "401", "422"),
        )
    },
    "/articles/{article_id}": {
        "get": op(
            "One article",
            "200",
            "Article",
            params=[param("article_id", "path", {"type": "string"}, "article id")],
            errors=("401", "404"),
        )
    },
    "/stories/{story_id}": {
        "get": op(
            "A story: its original article and its syndicated copies, oldest first",
            "200",
            "Story",
            params=[param("story_id", "path", {"type": "string"}, "story id")],
            errors=("401", "404"),
        )
    },
    "/alerts": {
        "get": op(
            "The delivery log, newest first",
            "200",
            "AlertPage",
            params=[
                param(
                    "status",
                    "query",
                    {"type": "string", "enum": ["pending", "delivered", "failed"]},
                    "only this status",
                ),
                param("subscription", "query", {"type": "string"}, "only this subscription's alerts"),
                *PAGING,
            ],
            errors=("400", "401", "422"),
        )
    },
    "/alerts/failed": {
        "get": op(
            "Failed deliveries (retries used up or subscription disabled)",
            "200",
            "AlertPage",
            params=[param("subscription", "query", {"type": "string"}, "only this subscription"), *PAGING],
            errors=("400", "401", "422"),
        )
    },
    "/alerts/{alert_id}": {"get": op("One alert", "200", "Alert", params=[ALERT_ID], errors=("401", "404"))},
    "/alerts/{alert_id}/replay": {
        "post": op(
            "Set a failed alert back to pending and queue its delivery now",
            "202",
            "Alert",
            params=[ALERT_ID],
            errors=("401", "404", "409"),
        )
    },
    "/healthz": {"get": op("The process answers", "200", None, errors=(), secured=False)},
    "/readyz": {
        "get": {
            **op("Redis and the database answer", "200", "Ready", errors=(), secured=False),
            "responses": {
                "200": {"description": "ready", "content": {JSON: {"schema": ref("Ready")}}},
                "503": {"description": "not ready", "content": {JSON: {"schema": ref("Ready")}}},
            },
        }
    },
    "/metrics": {
        "get": op(
            "Prometheus metrics (open without a token if INGEST_METRICS_PUBLIC=1)",
            "200",
            "text",
            errors=("401",),
            media="text/plain",
        )
    },
    "/openapi.json": {
        "get": {
            **op("This document", "200", None, errors=("401",)),
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}},
                "401": {"description": ERRORS["401"], "content": {JSON: {"schema": ref("Error")}}},
            },
        }
    },
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "news-ingest",
            "version": "1",
            "description": "Feeds, subscriptions, articles, stories and alerts of the news ingestion "
            'service. Errors: {"error": {"code", "message"}}.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "INGEST_API_TOKEN"}
            },
        },
        "paths": PATHS,
    }
