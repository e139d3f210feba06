"""/articles (filters, full-text search, one article) and /stories/{id} (an article and its copies)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api.common import STR_PARAM, Endpoint, answer, call, deps, path_id, query
from ingest.services.usecases.requests import ArticleQuery
from ingest.services.usecases.views import ArticlePage, ArticleView, Story


async def list_articles(request: Request) -> Response:
    """Newest first; with `q`, full-text search ranked best first."""
    return answer(await call(deps(request).reading.articles, query(request, ArticleQuery)))


async def get_article(request: Request) -> Response:
    return answer(await call(deps(request).reading.article, path_id(request, "article_id")))


async def get_story(request: Request) -> Response:
    return answer(await call(deps(request).reading.story, path_id(request, "story_id")))


endpoints = [
    Endpoint(
        "GET",
        "/articles",
        list_articles,
        "List stored articles newest first, or search them (`q`)",
        response=ArticlePage,
        query=ArticleQuery,
        errors=(400, 401, 422),
    ),
    Endpoint(
        "GET",
        "/articles/{article_id}",
        get_article,
        "One article",
        response=ArticleView,
        path_params={"article_id": (STR_PARAM, "article id")},
        errors=(401, 404, 422),
    ),
    Endpoint(
        "GET",
        "/stories/{story_id}",
        get_story,
        "A story: its original article and its syndicated copies, oldest first",
        response=Story,
        path_params={"story_id": (STR_PARAM, "story id")},
        errors=(401, 404, 422),
    ),
]
