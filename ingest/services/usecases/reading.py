"""Reading what was stored: articles (filters, full-text search), one article, stories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ingest.errors import ConfigError, NotFound
from ingest.models import ArticleFilter, iso, parse_iso
from ingest.services.subscriptions import check_language
from ingest.services.usecases.paging import BadCursor, decode_cursor, encode_cursor, time_key
from ingest.services.usecases.requests import ArticleQuery, Invalid
from ingest.services.usecases.views import ArticlePage, ArticleView, Story, article_view
from ingest.store.articles import ArticleStore

MAX_SEARCH_OFFSET = 10_000  # ranked search pages by offset; deeper pages cost more than they are worth


def _time(value: str | None, field: str) -> datetime | None:
    try:
        parsed = parse_iso(value)
    except (ValueError, OverflowError):
        raise Invalid(field, "must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z") from None
    return parsed.astimezone(UTC) if parsed else None


def article_filter(q: ArticleQuery) -> ArticleFilter:
    try:
        language = check_language(q.language, allow_und=True) if q.language is not None else None
    except ConfigError as exc:
        raise Invalid("language", str(exc).removeprefix("language ")) from None
    return ArticleFilter(
        language=language,
        feed_id=q.feed,
        story_id=q.story,
        since=_time(q.since, "since"),
        until=_time(q.until, "until"),
    )


@dataclass
class Reading:
    store: ArticleStore

    def articles(self, q: ArticleQuery) -> ArticlePage:
        """Newest first; with `q`, full-text search ranked best first."""
        filters = article_filter(q)
        if q.q is not None:
            key = decode_cursor(q.cursor, "search", (int,))
            offset = key[0] if key else 0
            if not 0 <= offset <= MAX_SEARCH_OFFSET:
                raise BadCursor()
            found = self.store.search_articles_page(q.q, filters, limit=q.limit + 1, offset=offset)
            more = len(found) > q.limit and offset + q.limit <= MAX_SEARCH_OFFSET
            return ArticlePage(
                items=[article_view(a) for a in found[: q.limit]],
                next_cursor=encode_cursor("search", offset + q.limit) if more else None,
            )
        articles = self.store.list_articles_page(
            filters, limit=q.limit + 1, after=time_key(q.cursor, "articles")
        )
        more, articles = len(articles) > q.limit, articles[: q.limit]
        last = articles[-1] if articles else None
        cursor = encode_cursor("articles", iso(last.fetched_at), last.id) if more and last else None
        return ArticlePage(items=[article_view(a) for a in articles], next_cursor=cursor)

    def article(self, article_id: str) -> ArticleView:
        return article_view(self.store.get_article(article_id))

    def story(self, story_id: str) -> Story:
        """The story's original (its first stored article) and its syndicated copies, oldest first."""
        articles = self.store.articles_in_story(story_id)
        if not articles:
            raise NotFound(f"no story with id {story_id!r}")
        views = [article_view(a) for a in articles]
        return Story(id=story_id, article=views[0], copies=views[1:])

    def stories(self, q: ArticleQuery) -> list[Story]:
        """Stories with an article among the newest matching `q`, most recently active first."""
        seen: dict[str, None] = {}
        page = ArticlePage(items=[])
        while len(seen) < q.limit:
            page = self.articles(q)
            for article in page.items:
                seen.setdefault(article.story_id)
            if page.next_cursor is None:
                break
            q = ArticleQuery(
                **{**{f: getattr(q, f) for f in q.__struct_fields__}, "cursor": page.next_cursor}
            )
        return [self.story(story_id) for story_id in list(seen)[: q.limit]]
