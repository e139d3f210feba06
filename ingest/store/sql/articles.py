"""Articles, their stories, full-text search and retention in SQL (`ArticleStore`).

Full-text search is the one dialect-specific query: a backend's `_match` gives the FROM/WHERE
clause that matches every word (articles aliased `a`) and the ranking; the rest is shared.
Pages are keyset pages (the last row's sort key), so a page is stable while new rows arrive;
search, ranked by relevance, is paged by offset.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ingest.errors import NotFound
from ingest.models import Article, ArticleFilter, utcnow
from ingest.store.sql.core import SQLCore, chunks, marks

ARTICLE_FIELDS = (
    "id",
    "feed_id",
    "feed_url",
    "entry_key",
    "url",
    "title",
    "text",
    "summary",
    "language",
    "language_confidence",
    "published_at",
    "story_id",
    "content_hash",
    "fetched_at",
    "author",
    "updated",
    "original_text_bytes",
)
ARTICLE_COLS = ", ".join(ARTICLE_FIELDS)


class SQLArticles(SQLCore):
    """The articles table and its full-text index."""

    @abstractmethod
    def _match(self, query: str) -> tuple[str, str, list[Any]] | None:
        """(FROM ... WHERE clause matching every word of `query`, ORDER BY rank, params); None: no words."""

    def _article(self, r: Sequence[Any]) -> Article:
        return Article(
            id=r[0],
            feed_id=int(r[1]),
            feed_url=r[2],
            entry_key=r[3],
            url=r[4],
            title=r[5],
            text=r[6],
            summary=r[7],
            language=r[8],
            language_confidence=float(r[9]),
            published_at=self._dt(r[10]),
            story_id=r[11],
            content_hash=r[12],
            fetched_at=self._dt(r[13]) or utcnow(),
            author=r[14],
            updated=bool(r[15]),
            original_text_bytes=r[16],
        )

    def _article_values(self, a: Article) -> list[Any]:
        return [
            a.id,
            a.feed_id,
            a.feed_url,
            a.entry_key,
            a.url,
            a.title,
            a.text,
            a.summary,
            a.language,
            a.language_confidence,
            self._ts(a.published_at),
            a.story_id,
            a.content_hash,
            self._ts(a.fetched_at),
            a.author,
            bool(a.updated),
            a.original_text_bytes,
        ]

    def _articles_where(self, where: str, params: Sequence[Any], tail: str = "") -> list[Article]:
        with self._read() as cur:
            cur.execute(f"SELECT {ARTICLE_COLS} FROM articles WHERE {where} {tail}", params)
            return [self._article(r) for r in cur.fetchall()]

    def _filter_sql(self, f: ArticleFilter, alias: str = "") -> tuple[list[str], list[Any]]:
        """WHERE terms and parameters of an ArticleFilter (`alias` prefixes the columns)."""
        terms: list[str] = []
        params: list[Any] = []
        for column, op, value in (
            ("language", "=", f.language),
            ("feed_id", "=", f.feed_id),
            ("story_id", "=", f.story_id),
            ("fetched_at", ">=", self._ts(f.since)),
            ("fetched_at", "<", self._ts(f.until)),
        ):
            if value is not None:
                terms.append(f"{alias}{column} {op} ?")
                params.append(value)
        return terms, params

    def add_articles(self, articles: Sequence[Article]) -> list[Article]:
        """Insert in one batch; return only the articles that were not stored before, in input order."""
        if not articles:
            return []
        inserted: set[str] = set()
        with self._write() as cur:
            for part in chunks(articles):
                params = [v for a in part for v in self._article_values(a)]
                cur.execute(
                    f"INSERT INTO articles ({ARTICLE_COLS}) VALUES {marks(len(part), len(ARTICLE_FIELDS))} "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    params,
                )
                inserted.update(r[0] for r in cur.fetchall())
        new: list[Article] = []
        for article in articles:
            if article.id in inserted:
                inserted.discard(article.id)  # a repeated id in the input counts once
                new.append(article)
        return new

    def update_article(self, article: Article) -> None:
        """Replace the content of the stored entry (feed_id, entry_key); its id and story stay."""
        with self._write() as cur:
            cur.execute(
                "UPDATE articles SET url = ?, title = ?, text = ?, summary = ?, language = ?, "
                "language_confidence = ?, published_at = ?, content_hash = ?, fetched_at = ?, author = ?, "
                "updated = ?, original_text_bytes = ? WHERE feed_id = ? AND entry_key = ?",
                (
                    article.url,
                    article.title,
                    article.text,
                    article.summary,
                    article.language,
                    article.language_confidence,
                    self._ts(article.published_at),
                    article.content_hash,
                    self._ts(article.fetched_at),
                    article.author,
                    True,
                    article.original_text_bytes,
                    article.feed_id,
                    article.entry_key,
                ),
            )
            if cur.rowcount == 0:
                raise NotFound(
                    f"no article with feed id {article.feed_id} and entry key {article.entry_key!r}"
                )

    def get_article(self, article_id: str) -> Article:
        found = self._articles_where("id = ?", (article_id,))
        if not found:
            raise NotFound(f"no article with id {article_id!r}")
        return found[0]

    def get_articles(self, article_ids: Iterable[str]) -> dict[str, Article]:
        """The stored articles of these ids: one query per CHUNK ids (a sender's claim reads them at once)."""
        found: dict[str, Article] = {}
        for part in chunks(list(dict.fromkeys(article_ids))):
            for article in self._articles_where(f"id IN ({marks(len(part))})", part):
                found[article.id] = article
        return found

    def get_article_by_entry(self, feed_id: int, entry_key: str) -> Article | None:
        found = self._articles_where("feed_id = ? AND entry_key = ?", (feed_id, entry_key))
        return found[0] if found else None

    def get_articles_by_entries(
        self, feed_id_entry_keys: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], Article]:
        """The stored articles of these (feed_id, entry_key) pairs: one query per feed and CHUNK keys."""
        by_feed: dict[int, list[str]] = {}
        for feed_id, key in feed_id_entry_keys:
            by_feed.setdefault(feed_id, []).append(key)
        found: dict[tuple[int, str], Article] = {}
        for feed_id, keys in by_feed.items():
            for part in chunks(list(dict.fromkeys(keys))):
                for article in self._articles_where(
                    f"feed_id = ? AND entry_key IN ({marks(len(part))})", (feed_id, *part)
                ):
                    found[(article.feed_id, article.entry_key)] = article
        return found

    def recent_languages(self, feed_id: int, *, min_chars: int, limit: int) -> dict[str, int]:
        with self._read() as cur:
            cur.execute(
                "SELECT language, COUNT(*) FROM (SELECT language FROM articles WHERE feed_id = ? "
                "AND LENGTH(text) >= ? ORDER BY fetched_at DESC LIMIT ?) recent GROUP BY language",
                [feed_id, min_chars, limit],
            )
            return {str(code): int(n) for code, n in cur.fetchall()}

    def list_articles(self, *, limit: int = 50) -> list[Article]:
        """Newest first."""
        return self.list_articles_page(ArticleFilter(), limit=limit)

    def list_articles_page(
        self, filters: ArticleFilter, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Article]:
        """Newest first (fetched_at, id), only rows strictly after the `after` key."""
        terms, params = self._filter_sql(filters)
        if after is not None:
            terms.append("(fetched_at < ? OR (fetched_at = ? AND id < ?))")
            params += [self._ts(after[0]), self._ts(after[0]), after[1]]
        where = " AND ".join(terms) or "1 = 1"
        return self._articles_where(where, (*params, limit), "ORDER BY fetched_at DESC, id DESC LIMIT ?")

    def articles_in_story(self, story_id: str) -> list[Article]:
        """Oldest first: the story's original, then its copies."""
        return self._articles_where("story_id = ?", (story_id,), "ORDER BY fetched_at, id")

    def search_articles_page(
        self, query: str, filters: ArticleFilter, *, limit: int, offset: int = 0
    ) -> list[Article]:
        """Full-text search within `filters`, best match first, `limit` rows from `offset`."""
        match = self._match(query)
        if match is None:
            return []
        source, rank, params = match
        terms, filter_params = self._filter_sql(filters, "a.")
        where = " ".join(f"AND {term}" for term in terms)
        columns = ", ".join(f"a.{name}" for name in ARTICLE_FIELDS)
        with self._read() as cur:
            cur.execute(
                f"SELECT {columns} FROM {source} {where} "
                f"ORDER BY {rank}, a.fetched_at DESC, a.id LIMIT ? OFFSET ?",
                (*params, *filter_params, limit, offset),
            )
            return [self._article(r) for r in cur.fetchall()]
