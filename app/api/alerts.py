"""/alerts: the delivery log (the outbox), failed deliveries, one alert, replay of a failed one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.common import (
    ApiError,
    alert_json,
    call,
    cursor_time,
    decode_cursor,
    deps,
    encode_cursor,
    invalid,
    page,
    page_limit,
    path_id,
    query_text,
)
from ingest.models import iso

STATUSES = ("pending", "delivered", "failed")


async def _alerts_page(request: Request, status: str | None) -> Response:
    limit = page_limit(request)
    subscription = query_text(request, "subscription")
    key = decode_cursor(request, "alerts", (str, str))
    after = (cursor_time(key[0]), key[1]) if key else None
    alerts = await call(
        deps(request).store.list_alerts_page,
        limit=limit + 1,
        status=status,
        subscription_id=subscription,
        after=after,
    )
    more = len(alerts) > limit
    alerts = alerts[:limit]
    cursor = encode_cursor("alerts", iso(alerts[-1].created_at), alerts[-1].id) if more else None
    return page([alert_json(a) for a in alerts], cursor)


async def list_alerts(request: Request) -> Response:
    """Newest first, optionally one `status` and/or one `subscription`."""
    status = query_text(request, "status")
    if status is not None and status not in STATUSES:
        raise invalid("status", f"must be one of {', '.join(STATUSES)}")
    return await _alerts_page(request, status)


async def list_failed(request: Request) -> Response:
    """The dead letters: alerts whose retries are used up (or whose subscription was disabled)."""
    return await _alerts_page(request, "failed")


async def get_alert(request: Request) -> Response:
    alert = await call(deps(request).store.get_alert, path_id(request, "alert_id"))
    return JSONResponse(alert_json(alert))


async def replay_alert(request: Request) -> Response:
    """Back to pending and queued now: one more delivery attempt with the same webhook-id."""
    d = deps(request)
    alert_id = path_id(request, "alert_id")
    alert = await call(d.store.get_alert, alert_id)
    sub = await call(d.store.get_subscription, alert.subscription_id)
    if sub.status == "disabled":
        raise ApiError(
            409,
            "conflict",
            f"subscription {sub.id} is disabled ({sub.status_reason}); set its status to active first",
        )
    attempts = len(d.settings.webhook_retry_schedule)  # the replay gets one more attempt
    replayed = await call(d.store.retry_failed_alert, alert_id, attempts=attempts)
    if replayed is None:
        raise ApiError(
            409, "conflict", f"alert {alert_id} is {alert.status}, only failed alerts are replayed"
        )
    await call(d.wake)
    return JSONResponse(alert_json(replayed), status_code=202)


routes = [
    Route("/alerts", list_alerts, methods=["GET"]),
    Route("/alerts/failed", list_failed, methods=["GET"]),
    Route("/alerts/{alert_id}", get_alert, methods=["GET"]),
    Route("/alerts/{alert_id}/replay", replay_alert, methods=["POST"]),
]
