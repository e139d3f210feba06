"""The Store written once in SQL both backends understand.

SQLite and PostgreSQL agree on `INSERT ... ON CONFLICT DO NOTHING RETURNING`,
`DELETE ... WHERE id IN (SELECT ... LIMIT n)` and everything else used here, so
backends only supply connections, transactions, timestamp conversion,
full-text search and migrations. Statements use `?` placeholders; the
PostgreSQL backend rewrites them, so shared SQL must never contain `%` or a
literal `?`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from ingest.errors import NotFound
from ingest.models import Alert, Article, Feed, utcnow
from ingest.store._batches import BatchMixin
from ingest.store._feeds import FEED_COLS, FeedStateMixin
from ingest.store._subscriptions import SubscriptionMixin

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
ALERT_COLS = (
    "id, subscription_id, story_id, article_id, matched_terms, status, attempts, "
    "next_attempt_at, last_error, created_at, delivered_at, digest_id"
)
ALERT_WIDTH = 12

# Rows per multi-row INSERT and keys per IN list: far below both backends' parameter limits.
CHUNK = 500


class Cursor(Protocol):
    """The DB-API subset both drivers' cursors share."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int, width: int = 1) -> str:
    """`?, ?` for an IN list, or `(?, ?), (?, ?)` for `count` rows of `width` values."""
    if width == 1:
        return ", ".join("?" * count)
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


class SQLStore(FeedStateMixin, SubscriptionMixin, BatchMixin, ABC):
    """Everything but connections and dialect details; see `SQLiteStore`, `PostgresStore`."""

    # -- backend hooks -----------------------------------------------------
    @abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor inside a write transaction, committed on success."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads (no write lock taken)."""

    @abstractmethod
    def _ts(self, dt: datetime | None) -> Any:
        """A datetime as the backend stores it (always UTC)."""

    @abstractmethod
    def _dt(self, value: Any) -> datetime | None:
        """A stored timestamp back as an aware UTC datetime."""

    @abstractmethod
    def search_articles(self, query: str, *, limit: int = 50) -> list[Article]: ...

    @abstractmethod
    def upgrade(self) -> int: ...

    _lock: Any  # set by each backend: guards its one connection
    _conn: Any

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ping(self) -> None:
        """Raises StoreError when the database does not answer (readiness checks)."""
        with self._read() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    # -- row conversion ------------------------------------------------------
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

    def _alert(self, r: Sequence[Any]) -> Alert:
        return Alert(
            id=r[0],
            subscription_id=r[1],
            story_id=r[2],
            article_id=r[3],
            matched_terms=list(json.loads(r[4])),
            status=r[5],
            attempts=int(r[6]),
            next_attempt_at=self._dt(r[7]),
            last_error=r[8],
            created_at=self._dt(r[9]),
            delivered_at=self._dt(r[10]),
            digest_id=r[11],
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

    # -- feeds -------------------------------------------------------------
    def add_feed(
        self, url: str, *, interval: int | None = None, title: str | None = None, fulltext: bool = False
    ) -> Feed:
        """Add a feed, or return the existing one with that URL (`fulltext=True` also switches it on)."""
        with self._write() as cur:
            cur.execute(
                "INSERT INTO feeds (url, title, interval, created_at, fulltext) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (url) DO NOTHING",
                (url, title, interval, self._ts(utcnow()), fulltext),
            )
            if fulltext:
                cur.execute("UPDATE feeds SET fulltext = ? WHERE url = ?", (True, url))
            cur.execute(f"SELECT {FEED_COLS} FROM feeds WHERE url = ?", (url,))
            return self._feed(cur.fetchone())

    def get_feed(self, feed_id: int) -> Feed:
        with self._read() as cur:
            cur.execute(f"SELECT {FEED_COLS} FROM feeds WHERE id = ?", (feed_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no feed with id {feed_id}")
        return self._feed(row)

    def list_feeds(self) -> list[Feed]:
        with self._read() as cur:
            cur.execute(f"SELECT {FEED_COLS} FROM feeds ORDER BY id")
            return [self._feed(r) for r in cur.fetchall()]

    def remove_feed(self, feed_id: int) -> None:
        """Remove the feed and its seen keys; its stored articles stay (they carry the feed URL)."""
        with self._write() as cur:
            cur.execute("DELETE FROM feeds WHERE id = ?", (feed_id,))
            if cur.rowcount == 0:
                raise NotFound(f"no feed with id {feed_id}")

    def due_feeds(self, now: datetime) -> list[Feed]:
        """Active feeds whose next poll time has come (never-polled first, then most overdue)."""
        with self._read() as cur:
            cur.execute(
                f"SELECT {FEED_COLS} FROM feeds WHERE status = 'active' "
                "AND (next_poll_at IS NULL OR next_poll_at <= ?) "
                "ORDER BY next_poll_at IS NOT NULL, next_poll_at, id",
                (self._ts(now),),
            )
            return [self._feed(r) for r in cur.fetchall()]

    # -- seen entries ------------------------------------------------------
    def unseen_entry_keys(self, feed_id: int, keys: Sequence[str]) -> set[str]:
        """The keys of `keys` that this feed has never queued."""
        wanted = list(dict.fromkeys(keys))
        seen: set[str] = set()
        with self._read() as cur:
            for part in chunks(wanted):
                cur.execute(
                    f"SELECT entry_key FROM seen_entries WHERE feed_id = ? "
                    f"AND entry_key IN ({marks(len(part))})",
                    (feed_id, *part),
                )
                seen.update(r[0] for r in cur.fetchall())
        return set(wanted) - seen

    def mark_entries_seen(self, feed_id: int, keys: Iterable[str]) -> None:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return
        now = self._ts(utcnow())
        with self._write() as cur:
            for part in chunks(unique):
                params = [v for key in part for v in (feed_id, key, now)]
                cur.execute(
                    f"INSERT INTO seen_entries (feed_id, entry_key, seen_at) "
                    f"VALUES {marks(len(part), 3)} ON CONFLICT DO NOTHING",
                    params,
                )

    # -- articles ----------------------------------------------------------
    def add_articles(self, articles: Sequence[Article]) -> list[Article]:
        """Insert in one batch; return only the articles that were not stored before, in input order."""
        if not articles:
            return []
        width = len(ARTICLE_FIELDS)
        inserted: set[str] = set()
        with self._write() as cur:
            for part in chunks(articles):
                params = [v for a in part for v in self._article_values(a)]
                cur.execute(
                    f"INSERT INTO articles ({ARTICLE_COLS}) VALUES {marks(len(part), width)} "
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

    def _articles_where(self, where: str, params: Sequence[Any], tail: str = "") -> list[Article]:
        with self._read() as cur:
            cur.execute(f"SELECT {ARTICLE_COLS} FROM articles WHERE {where} {tail}", params)
            return [self._article(r) for r in cur.fetchall()]

    def get_article(self, article_id: str) -> Article:
        found = self._articles_where("id = ?", (article_id,))
        if not found:
            raise NotFound(f"no article with id {article_id!r}")
        return found[0]

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

    def find_article_by_url(self, url: str) -> Article | None:
        """The earliest stored article with this URL (the original of any later copy)."""
        found = self._articles_where("url = ?", (url,), "ORDER BY fetched_at, id LIMIT 1")
        return found[0] if found else None

    def list_articles(self, *, limit: int = 50) -> list[Article]:
        """Newest first."""
        return self._articles_where("1 = 1", (limit,), "ORDER BY fetched_at DESC, id DESC LIMIT ?")

    def articles_in_story(self, story_id: str) -> list[Article]:
        """Oldest first: the story's original, then its copies."""
        return self._articles_where("story_id = ?", (story_id,), "ORDER BY fetched_at, id")

    def delete_articles_older_than(self, cutoff: datetime, *, batch: int = 1000) -> int:
        """Delete articles fetched before `cutoff`, `batch` rows per transaction; return how many."""
        total = 0
        while True:
            with self._write() as cur:
                cur.execute(
                    "DELETE FROM articles WHERE id IN (SELECT id FROM articles WHERE fetched_at < ? LIMIT ?)",
                    (self._ts(cutoff), batch),
                )
                deleted = cur.rowcount
            total += deleted
            if deleted < batch:
                return total

    # -- alerts ------------------------------------------------------------
    def _alert_values(self, a: Alert, now: datetime) -> list[Any]:
        return [
            a.id,
            a.subscription_id,
            a.story_id,
            a.article_id,
            json.dumps(list(a.matched_terms)),
            a.status,
            a.attempts,
            self._ts(a.next_attempt_at),
            a.last_error,
            self._ts(a.created_at or now),
            self._ts(a.delivered_at),
            a.digest_id,
        ]

    def add_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Insert; one alert per (subscription_id, story_id). Return only the new ones, in input order."""
        if not alerts:
            return []
        now = utcnow()
        inserted: set[str] = set()
        with self._write() as cur:
            for part in chunks(alerts):
                params = [v for a in part for v in self._alert_values(a, now)]
                cur.execute(
                    f"INSERT INTO alerts ({ALERT_COLS}) VALUES {marks(len(part), ALERT_WIDTH)} "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    params,
                )
                inserted.update(r[0] for r in cur.fetchall())
        new: list[Alert] = []
        for alert in alerts:
            if alert.id in inserted:
                inserted.discard(alert.id)
                new.append(alert if alert.created_at else replace(alert, created_at=now))
        return new

    def get_alert(self, alert_id: str) -> Alert:
        with self._read() as cur:
            cur.execute(f"SELECT {ALERT_COLS} FROM alerts WHERE id = ?", (alert_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no alert with id {alert_id!r}")
        return self._alert(row)

    def record_attempt(
        self,
        alert_id: str,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None,
        error: str | None,
    ) -> None:
        """Persist one delivery attempt; `delivered_at` is set when status becomes `delivered`."""
        delivered_at = utcnow() if status == "delivered" else None
        with self._write() as cur:
            cur.execute(
                "UPDATE alerts SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, "
                "delivered_at = coalesce(delivered_at, ?) WHERE id = ?",
                (status, attempts, self._ts(next_attempt_at), error, self._ts(delivered_at), alert_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no alert with id {alert_id!r}")

    def pending_alerts(self, due_before: datetime, *, limit: int = 1000) -> list[Alert]:
        """Pending alerts whose next attempt is at or before `due_before`, most overdue first."""
        with self._read() as cur:
            cur.execute(
                f"SELECT {ALERT_COLS} FROM alerts WHERE status = 'pending' "
                "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
                "ORDER BY next_attempt_at IS NOT NULL, next_attempt_at, created_at, id LIMIT ?",
                (self._ts(due_before), limit),
            )
            return [self._alert(r) for r in cur.fetchall()]

    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[Alert]:
        """Newest first, optionally only one status."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        with self._read() as cur:
            cur.execute(
                f"SELECT {ALERT_COLS} FROM alerts {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                (*params, limit),
            )
            return [self._alert(r) for r in cur.fetchall()]
