"""The articles aggregate: stored articles, the stories they belong to, full-text search, retention."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from ingest.models import Article, ArticleFilter


class ArticleStore(Protocol):
    def add_articles(self, articles: Sequence[Article]) -> list[Article]:
        """Insert in one batch; return only the articles that were not stored before."""
        ...

    def update_article(self, article: Article) -> None:
        """Replace the content of entry (feed_id, entry_key); sets `updated`, keeps id and story_id."""
        ...

    def get_article(self, article_id: str) -> Article: ...

    def get_articles(self, article_ids: Iterable[str]) -> dict[str, Article]:
        """The stored articles of these ids, in few queries; absent ones left out."""
        ...

    def get_article_by_entry(self, feed_id: int, entry_key: str) -> Article | None: ...

    def get_articles_by_entries(
        self, feed_id_entry_keys: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], Article]:
        """The stored articles of these (feed_id, entry_key) pairs, in few queries; absent ones left out."""
        ...

    def recent_languages(self, feed_id: int, *, min_chars: int, limit: int) -> dict[str, int]:
        """Languages of the feed's `limit` newest articles with at least `min_chars` of text, counted
        (the evidence of the feed's language prior for short texts)."""
        ...

    def list_articles(self, *, limit: int = 50) -> list[Article]:
        """Newest first."""
        ...

    def list_articles_page(
        self, filters: ArticleFilter, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Article]:
        """Newest first by (fetched_at, id), strictly after the `after` key."""
        ...

    def articles_in_story(self, story_id: str) -> list[Article]:
        """Oldest first."""
        ...

    def search_articles_page(
        self, query: str, filters: ArticleFilter, *, limit: int, offset: int = 0
    ) -> list[Article]:
        """Full-text search within `filters`, best first, `limit` rows from `offset`."""
        ...
