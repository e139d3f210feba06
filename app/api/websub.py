"""The WebSub callback routes: GET verifies a hub's intent, POST takes signed pushes.

The protocol's logic is `ingest.feeds.websub`; these routes only read requests and answer.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ingest.errors import NotFound, ParseError
from ingest.feeds.websub import PREFIX, verify_signature
from ingest.log import get_logger
from ingest.models import utcnow
from ingest.services.websub import QueueEntries, ingest_push, verify_intent
from ingest.settings import Settings
from ingest.store.feeds import FeedStore

log = get_logger(__name__)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def websub_routes(
    store: FeedStore, settings: Settings, queue: QueueEntries, prefix: str = PREFIX
) -> list[Route]:
    """Starlette routes of the callback: GET verifies intent, POST takes signed content."""

    async def callback(request: Request) -> Response:
        feed_id = int(request.path_params["feed_id"])
        if request.method == "GET":
            status, text = await run_in_threadpool(
                verify_intent, store, feed_id, request.query_params, utcnow()
            )
            return PlainTextResponse(text, status_code=status)
        sub = await run_in_threadpool(store.get_websub, feed_id)
        bound = log.bind(feed_id=feed_id)
        if sub is None:
            return PlainTextResponse("no subscription", status_code=410)
        body = await _read_capped(request, settings.max_body_bytes)
        if body is None:
            bound.warning("websub_push_too_large", limit=settings.max_body_bytes)
            return PlainTextResponse("body too large", status_code=413)
        if not verify_signature(sub.secret, body, request.headers.get("x-hub-signature")):
            bound.warning("websub_push_bad_signature", signed="x-hub-signature" in request.headers)
            return PlainTextResponse("ignored", status_code=202)  # the spec: acknowledge, then drop
        try:
            entries = await run_in_threadpool(
                ingest_push,
                store,
                settings,
                queue,
                feed_id,
                body,
                request.headers.get("content-type", "application/xml"),
            )
        except (ParseError, NotFound) as exc:
            bound.warning("websub_push_unreadable", error=str(exc))
            return PlainTextResponse("ignored", status_code=202)
        bound.info("websub_push", entries=entries, bytes=len(body))
        return PlainTextResponse("accepted", status_code=202)

    return [Route(f"{prefix}/{{feed_id:int}}", callback, methods=["GET", "POST"])]
