"""/subscriptions: list, add, show, update, remove, rotate the webhook secret.

Queries, webhook URLs and secrets are checked exactly as `ingest subs add`
checks them (parse_query, netsafe.check_url, alert.validate_secret). The
secret is shown once: in the answer to its creation or rotation.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.common import (
    ApiError,
    call,
    check_fields,
    cursor_time,
    decode_cursor,
    deps,
    encode_cursor,
    invalid,
    page,
    page_limit,
    path_id,
    public_url,
    read_json,
    subscription_json,
    text,
)
from ingest.errors import ConfigError
from ingest.models import Subscription, SubscriptionOptions, iso, utcnow

FIELDS = ("name", "query", "webhook", "secret", "options")
OPTION_FIELDS = ("languages", "feed_ids", "digest_minutes", "rate_limit")
SETTABLE_STATUS = ("active", "paused")  # `disabled` is the service's verdict (410 Gone)


def checked_query(value: Any) -> str | None:
    """The query if it parses; 422 with the problem and its 0-based position if not."""
    query = text(value, "query", max_len=2000)
    if query is None:
        return None
    from ingest.errors import QueryError
    from ingest.match import parse_query  # imported here: the match package loads on first use

    try:
        parse_query(query)
    except QueryError as exc:
        raise ApiError(
            422,
            "invalid_query",
            f"query: {exc.reason} at position {exc.position}",
            field="query",
            position=exc.position,
        ) from None
    except RecursionError:
        raise invalid("query", "is nested too deeply") from None
    return query


def checked_secret(value: Any) -> str | None:
    from ingest.alert.signature import validate_secret

    secret = text(value, "secret", max_len=400)
    if secret is None:
        return None
    try:
        return validate_secret(secret)
    except ConfigError as exc:
        raise invalid("secret", str(exc)) from None


def checked_options(store: Any, value: Any) -> SubscriptionOptions | None:
    """`{"languages", "feed_ids" (ids or URLs), "digest_minutes", "rate_limit"}`, checked like the CLI's."""
    from ingest.services.subscriptions import make_options

    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(OPTION_FIELDS):
        raise invalid("options", f"must be an object with some of {', '.join(OPTION_FIELDS)}")
    lists = {k: value.get(k) or [] for k in ("languages", "feed_ids")}
    if not all(isinstance(v, list) and all(isinstance(i, str | int) for i in v) for v in lists.values()):
        raise invalid("options", "languages and feed_ids must be lists")
    try:
        return make_options(
            store,
            languages=lists["languages"],
            feeds=lists["feed_ids"],
            digest_minutes=value.get("digest_minutes"),
            rate_limit=value.get("rate_limit"),
        )
    except ConfigError as exc:
        raise invalid("options", str(exc)) from None


async def checked_webhook(request: Request, value: Any) -> str | None:
    webhook = text(value, "webhook", max_len=2000)
    if webhook is not None:
        await public_url(request, webhook, "webhook")
    return webhook


async def list_subscriptions(request: Request) -> Response:
    limit = page_limit(request)
    key = decode_cursor(request, "subscriptions", (str, str))
    after = (cursor_time(key[0]), key[1]) if key else None
    subs = await call(deps(request).store.list_subscriptions_page, limit=limit + 1, after=after)
    more = len(subs) > limit
    subs = subs[:limit]
    cursor = encode_cursor("subscriptions", iso(subs[-1].created_at), subs[-1].id) if more else None
    return page([subscription_json(s) for s in subs], cursor)


async def add_subscription(request: Request) -> Response:
    from ingest.alert.signature import new_secret

    body = await read_json(request)
    check_fields(body, (*FIELDS, "backfill"))
    query = checked_query(body.get("query"))
    if query is None:
        raise invalid("query", "is required")
    name = text(body.get("name"), "name", max_len=200) or query
    secret = checked_secret(body.get("secret")) or new_secret()
    webhook = await checked_webhook(request, body.get("webhook"))
    if webhook is None:
        raise invalid("webhook", "is required")
    store = deps(request).store
    options = await call(checked_options, store, body.get("options")) or SubscriptionOptions()
    period = _backfill_period(body.get("backfill"))
    existing = await call(store.list_subscriptions)
    if any(s.query == query and s.webhook == webhook for s in existing):
        raise ApiError(409, "conflict", "a subscription with this query and webhook already exists")
    sub = await call(
        store.add_subscription,
        Subscription(
            id="sub_" + uuid.uuid4().hex[:16],
            name=name,
            query=query,
            webhook=webhook,
            secret=secret,
            created_at=utcnow(),
            options=options,
        ),
    )
    answer = {**subscription_json(sub), "secret": sub.secret}
    if period is not None:
        from ingest.services.subscriptions import backfill

        alerts = await call(backfill, store, sub, period)
        await call(deps(request).wake)
        answer["backfilled"] = len(alerts)
    return JSONResponse(answer, status_code=201)


def _backfill_period(value: Any) -> timedelta | None:
    from ingest.services.subscriptions import parse_period

    period = text(value, "backfill", max_len=20)
    try:
        return parse_period(period) if period is not None else None
    except ConfigError as exc:
        raise invalid("backfill", str(exc)) from None


async def get_subscription(request: Request) -> Response:
    sub = await call(deps(request).store.get_subscription, path_id(request, "subscription_id"))
    return JSONResponse(subscription_json(sub))


async def update_subscription(request: Request) -> Response:
    sub_id = path_id(request, "subscription_id")
    body = await read_json(request)
    check_fields(body, (*FIELDS, "status"))
    store = deps(request).store
    await call(store.get_subscription, sub_id)  # 404 before validating against the network
    name = text(body.get("name"), "name", max_len=200)
    query = checked_query(body.get("query"))
    secret = checked_secret(body.get("secret"))
    status = body.get("status")
    if status is not None and status not in SETTABLE_STATUS:
        raise invalid("status", f"must be one of {', '.join(SETTABLE_STATUS)}")
    webhook = await checked_webhook(request, body.get("webhook"))
    options = await call(checked_options, store, body.get("options"))
    sub = await call(
        store.update_subscription, sub_id, name=name, query=query, webhook=webhook, options=options
    )
    if secret is not None:  # an explicit secret replaces the old one at once, no grace period
        sub = await call(store.rotate_subscription_secret, sub_id, secret, previous_valid_until=utcnow())
    if status is not None:
        await call(store.set_subscription_status, sub_id, status, None)
        sub = await call(store.get_subscription, sub_id)
    return JSONResponse(subscription_json(sub))


async def remove_subscription(request: Request) -> Response:
    await call(deps(request).store.remove_subscription, path_id(request, "subscription_id"))
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    """New secret now; the old one keeps signing for INGEST_SECRET_GRACE_SECONDS."""
    from ingest.alert.signature import new_secret

    sub_id = path_id(request, "subscription_id")
    d = deps(request)
    until = utcnow() + timedelta(seconds=d.settings.secret_grace_seconds)
    sub = await call(d.store.rotate_subscription_secret, sub_id, new_secret(), previous_valid_until=until)
    return JSONResponse(
        {
            "subscription": subscription_json(sub),
            "secret": sub.secret,
            "previous_secret_expires_at": iso(until),
        }
    )


routes = [
    Route("/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/subscriptions", add_subscription, methods=["POST"]),
    Route("/subscriptions/{subscription_id}", get_subscription, methods=["GET"]),
    Route("/subscriptions/{subscription_id}", update_subscription, methods=["PATCH"]),
    Route("/subscriptions/{subscription_id}", remove_subscription, methods=["DELETE"]),
    Route("/subscriptions/{subscription_id}/rotate-secret", rotate_secret, methods=["POST"]),
]
