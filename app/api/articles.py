"""/articles (filters, full-text search, one article) and /stories/{id} (an article and its copies)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.common import (
    ApiError,
    article_json,
    call,
    cursor_time,
    decode_cursor,
    deps,
    encode_cursor,
    page,
    page_limit,
    path_id,
    query_int,
    query_text,
    query_time,
)
from ingest.models import ArticleFilter, iso

MAX_SEARCH_OFFSET = 10_000  # ranked search pages by offset; deeper pages cost more than they are worth


def article_filter(request: Request) -> ArticleFilter:
    return ArticleFilter(
        language=query_text(request, "language", max_len=16),
        feed_id=query_int(request, "feed"),
        story_id=query_text(request, "story"),
        since=query_time(request, "since"),
        until=query_time(request, "until"),
    )


async def list_articles(request: Request) -> Response:
    """Newest first; with `q`, full-text search ranked best first."""
    limit = page_limit(request)
    filters = article_filter(request)
    store = deps(request).store
    q = query_text(request, "q", max_len=500)
    if q is not None:
        key = decode_cursor(request, "search", (int,))
        offset = key[0] if key else 0
        if not 0 <= offset <= MAX_SEARCH_OFFSET:
            raise ApiError(400, "bad_cursor", "cursor is not one this listing returned")
        found = await call(store.search_articles_page, q, filters, limit=limit + 1, offset=offset)
        more = len(found) > limit and offset + limit <= MAX_SEARCH_OFFSET
        found = found[:limit]
        return page(
            [article_json(a) for a in found], encode_cursor("search", offset + limit) if more else None
        )
    key = decode_cursor(request, "articles", (str, str))
    after = (cursor_time(key[0]), key[1]) if key else None
    articles = await call(store.list_articles_page, filters, limit=limit + 1, after=after)
    more = len(articles) > limit
    articles = articles[:limit]
    cursor = encode_cursor("articles", iso(articles[-1].fetched_at), articles[-1].id) if more else None
    return page([article_json(a) for a in articles], cursor)


async def get_article(request: Request) -> Response:
    article = await call(deps(request).store.get_article, path_id(request, "article_id"))
    return JSONResponse(article_json(article))


async def get_story(request: Request) -> Response:
    """The story's original (its first stored article) and its syndicated copies, oldest first."""
    story_id = path_id(request, "story_id")
    articles = await call(deps(request).store.articles_in_story, story_id)
    if not articles:
        raise ApiError(404, "not_found", f"no story with id {story_id!r}")
    return JSONResponse(
        {
            "id": story_id,
            "article": article_json(articles[0]),
            "copies": [article_json(a) for a in articles[1:]],
        }
    )


routes = [
    Route("/articles", list_articles, methods=["GET"]),
    Route("/articles/{article_id}", get_article, methods=["GET"]),
    Route("/stories/{story_id}", get_story, methods=["GET"]),
]
