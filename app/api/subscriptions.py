"""/subscriptions: list, add, show, update, remove, rotate the webhook secret.

Everything is checked by the use cases `ingest subs ...` calls too. The secret is shown once, in
the answer to its creation or rotation, and such answers are never cached (`no-store`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.common import NO_STORE, STR_PARAM, Endpoint, answer, body, call, deps, path_id, query
from ingest.services.usecases.requests import NewSubscription, PageQuery, SubscriptionChange
from ingest.services.usecases.views import (
    RotatedSecret,
    SubscriptionPage,
    SubscriptionView,
    SubscriptionWithSecret,
)

SUB_ID = {"subscription_id": (STR_PARAM, "subscription id (`sub_...`)")}


async def list_subscriptions(request: Request) -> Response:
    return answer(await call(deps(request).subscriptions.page, query(request, PageQuery)))


async def add_subscription(request: Request) -> Response:
    req = await body(request, NewSubscription)
    return answer(await call(deps(request).subscriptions.create, req), 201, NO_STORE)


async def get_subscription(request: Request) -> Response:
    return answer(await call(deps(request).subscriptions.get, path_id(request, "subscription_id")))


async def update_subscription(request: Request) -> Response:
    sub_id = path_id(request, "subscription_id")
    change = await body(request, SubscriptionChange)
    return answer(await call(deps(request).subscriptions.update, sub_id, change))


async def remove_subscription(request: Request) -> Response:
    await call(deps(request).subscriptions.remove, path_id(request, "subscription_id"))
    return Response(status_code=204)


async def rotate_secret(request: Request) -> Response:
    """New secret now; the old one keeps signing for INGEST_SECRET_GRACE_SECONDS."""
    rotated = await call(deps(request).subscriptions.rotate_secret, path_id(request, "subscription_id"))
    return answer(rotated, headers=NO_STORE)


endpoints = [
    Endpoint(
        "GET",
        "/subscriptions",
        list_subscriptions,
        "List subscriptions and their delivery state",
        response=SubscriptionPage,
        query=PageQuery,
        errors=(400, 401, 422),
    ),
    Endpoint(
        "POST",
        "/subscriptions",
        add_subscription,
        "Add a subscription; the answer carries its secret (shown only here)",
        201,
        SubscriptionWithSecret,
        NewSubscription,
        errors=(400, 401, 409, 413, 422),
    ),
    Endpoint(
        "GET",
        "/subscriptions/{subscription_id}",
        get_subscription,
        "A subscription",
        response=SubscriptionView,
        path_params=SUB_ID,
        errors=(401, 404, 422),
    ),
    Endpoint(
        "PATCH",
        "/subscriptions/{subscription_id}",
        update_subscription,
        "Change name, query, webhook, options, secret (at once, no grace) or status",
        response=SubscriptionView,
        body=SubscriptionChange,
        path_params=SUB_ID,
        errors=(400, 401, 404, 413, 422),
    ),
    Endpoint(
        "DELETE",
        "/subscriptions/{subscription_id}",
        remove_subscription,
        "Remove a subscription and its alerts",
        204,
        path_params=SUB_ID,
        errors=(401, 404, 422),
    ),
    Endpoint(
        "POST",
        "/subscriptions/{subscription_id}/rotate-secret",
        rotate_secret,
        "New secret; the old one also signs until previous_secret_expires_at",
        response=RotatedSecret,
        path_params=SUB_ID,
        errors=(401, 404, 422),
    ),
]
