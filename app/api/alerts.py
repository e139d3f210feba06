"""/alerts: the delivery log (the outbox), failed deliveries, one alert, replay of a failed one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.common import STR_PARAM, Endpoint, answer, call, deps, path_id, query
from ingest.models import Alert
from ingest.services.usecases.requests import AlertQuery, FailedQuery
from ingest.services.usecases.views import AlertPage

ALERT_ID = {"alert_id": (STR_PARAM, "alert id, the webhook-id (`msg_...`)")}


async def list_alerts(request: Request) -> Response:
    """Newest first, optionally one `status` and/or one `subscription`."""
    return answer(await call(deps(request).alerts.page, query(request, AlertQuery)))


async def list_failed(request: Request) -> Response:
    """The dead letters: alerts whose retries are used up (or whose subscription was disabled)."""
    q = query(request, FailedQuery)
    wanted = AlertQuery(status="failed", subscription=q.subscription, limit=q.limit, cursor=q.cursor)
    return answer(await call(deps(request).alerts.page, wanted))


async def get_alert(request: Request) -> Response:
    return answer(await call(deps(request).alerts.get, path_id(request, "alert_id")))


async def replay_alert(request: Request) -> Response:
    """Back to pending and the sender woken: one more delivery attempt with the same webhook-id."""
    return answer(await call(deps(request).alerts.replay, path_id(request, "alert_id")), 202)


endpoints = [
    Endpoint(
        "GET",
        "/alerts",
        list_alerts,
        "The delivery log, newest first",
        response=AlertPage,
        query=AlertQuery,
        errors=(400, 401, 422),
    ),
    Endpoint(
        "GET",
        "/alerts/failed",
        list_failed,
        "Failed deliveries (retries used up or subscription disabled)",
        response=AlertPage,
        query=FailedQuery,
        errors=(400, 401, 422),
    ),
    Endpoint(
        "GET",
        "/alerts/{alert_id}",
        get_alert,
        "One alert",
        response=Alert,
        path_params=ALERT_ID,
        errors=(401, 404, 422),
    ),
    Endpoint(
        "POST",
        "/alerts/{alert_id}/replay",
        replay_alert,
        "Set a failed alert back to pending and deliver it again now",
        202,
        Alert,
        path_params=ALERT_ID,
        errors=(401, 404, 409, 422),
    ),
]
