"""/feeds: list, add, show (the feed's fetch state), edit, remove."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.common import ID_PARAM, Endpoint, answer, body, call, deps, path_int, query
from ingest.models import Feed
from ingest.services.usecases.requests import FeedChange, NewFeed, PageQuery
from ingest.services.usecases.views import FeedPage

FEED_ID = {"feed_id": (ID_PARAM, "feed id")}


async def list_feeds(request: Request) -> Response:
    return answer(await call(deps(request).feeds.page, query(request, PageQuery)))


async def add_feed(request: Request) -> Response:
    req = await body(request, NewFeed)
    added = await call(deps(request).feeds.add, req)
    return answer(added.feed, 201)


async def get_feed(request: Request) -> Response:
    return answer(await call(deps(request).store.get_feed, path_int(request, "feed_id")))


async def edit_feed(request: Request) -> Response:
    feed_id = path_int(request, "feed_id")
    change = await body(request, FeedChange)
    return answer(await call(deps(request).feeds.edit, feed_id, change))


async def remove_feed(request: Request) -> Response:
    await call(deps(request).feeds.remove, path_int(request, "feed_id"))
    return Response(status_code=204)


endpoints = [
    Endpoint(
        "GET",
        "/feeds",
        list_feeds,
        "List feeds with their fetch state",
        response=FeedPage,
        query=PageQuery,
        errors=(400, 401, 422),
    ),
    Endpoint(
        "POST",
        "/feeds",
        add_feed,
        "Add a feed (http(s), public address only)",
        201,
        Feed,
        NewFeed,
        errors=(400, 401, 409, 413, 422),
    ),
    Endpoint(
        "GET",
        "/feeds/{feed_id:int}",
        get_feed,
        "A feed and its state: last success, last error, consecutive errors, next poll",
        response=Feed,
        path_params=FEED_ID,
        errors=(401, 404, 422),
    ),
    Endpoint(
        "PATCH",
        "/feeds/{feed_id:int}",
        edit_feed,
        "Change a feed's interval (or back to the default), full-text fetching or name; polled next",
        response=Feed,
        body=FeedChange,
        path_params=FEED_ID,
        errors=(400, 401, 404, 413, 422),
    ),
    Endpoint(
        "DELETE",
        "/feeds/{feed_id:int}",
        remove_feed,
        "Remove a feed (its stored articles stay)",
        204,
        path_params=FEED_ID,
        errors=(401, 404, 422),
    ),
]
