"""/feeds: list, add, show (the feed's fetch state), remove."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.common import (
    ApiError,
    call,
    check_fields,
    decode_cursor,
    deps,
    encode_cursor,
    feed_json,
    integer,
    page,
    page_limit,
    path_int,
    public_url,
    read_json,
    text,
)

MIN_INTERVAL = 60


async def list_feeds(request: Request) -> Response:
    limit = page_limit(request)
    key = decode_cursor(request, "feeds", (int,))
    feeds = await call(deps(request).store.list_feeds_page, limit=limit + 1, after_id=key[0] if key else None)
    more = len(feeds) > limit
    feeds = feeds[:limit]
    return page([feed_json(f) for f in feeds], encode_cursor("feeds", feeds[-1].id) if more else None)


async def add_feed(request: Request) -> Response:
    body = await read_json(request)
    check_fields(body, ("url", "interval"))
    url = text(body.get("url"), "url", max_len=2000, required=True)
    assert url is not None
    interval = integer(body.get("interval"), "interval", minimum=MIN_INTERVAL, maximum=30 * 86400)
    d = deps(request)
    await public_url(request, url, "url")
    if await call(d.store.find_feed_by_url, url) is not None:
        raise ApiError(409, "conflict", f"a feed with URL {url} already exists")
    feed = await call(d.store.add_feed, url, interval=interval)
    return JSONResponse(feed_json(feed), status_code=201)


async def get_feed(request: Request) -> Response:
    feed = await call(deps(request).store.get_feed, path_int(request, "feed_id"))
    return JSONResponse(feed_json(feed))


async def remove_feed(request: Request) -> Response:
    await call(deps(request).store.remove_feed, path_int(request, "feed_id"))
    return Response(status_code=204)


routes = [
    Route("/feeds", list_feeds, methods=["GET"]),
    Route("/feeds", add_feed, methods=["POST"]),
    Route("/feeds/{feed_id:int}", get_feed, methods=["GET"]),
    Route("/feeds/{feed_id:int}", remove_feed, methods=["DELETE"]),
]
