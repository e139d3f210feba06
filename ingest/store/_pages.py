"""What the HTTP API needs beyond the pipeline's store: keyset pages, secret rotation, replay.

Kept apart from `_sql.py` so each module stays small; both backends inherit
`PagedSQLStore`. Pages use keyset pagination (the last row's sort key, not an
offset), so a page is stable while new rows arrive; full-text search, ranked
by relevance, is the one listing paged by offset (see the backends).
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Any

from ingest.errors import NotFound
from ingest.models import Alert, Article, ArticleFilter, Feed, Subscription, utcnow
from ingest.store._delivery import DeliveryMixin, signing_secrets
from ingest.store._sql import ALERT_COLS, ARTICLE_COLS, FEED_COLS, SQLStore


class PagedSQLStore(DeliveryMixin, SQLStore):
    """SQLStore plus the API's queries and delivery bookkeeping; backends add `search_articles_page`."""

    @abstractmethod
    def search_articles_page(
        self, query: str, filters: ArticleFilter, *, limit: int, offset: int = 0
    ) -> list[Article]:
        """Full-text search within `filters`, best first, `limit` rows from `offset`."""

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

    # -- feeds -------------------------------------------------------------
    def find_feed_by_url(self, url: str) -> Feed | None:
        with self._read() as cur:
            cur.execute(f"SELECT {FEED_COLS} FROM feeds WHERE url = ?", (url,))
            row = cur.fetchone()
        return self._feed(row) if row else None

    def list_feeds_page(self, *, limit: int, after_id: int | None = None) -> list[Feed]:
        """Feeds by id, the first `limit` after `after_id`."""
        with self._read() as cur:
            cur.execute(
                f"SELECT {FEED_COLS} FROM feeds WHERE id > ? ORDER BY id LIMIT ?",
                (after_id if after_id is not None else -1, limit),
            )
            return [self._feed(r) for r in cur.fetchall()]

    # -- articles ----------------------------------------------------------
    def list_articles_page(
        self, filters: ArticleFilter, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Article]:
        """Newest first (fetched_at, id), only rows strictly after the `after` key."""
        terms, params = self._filter_sql(filters)
        if after is not None:
            terms.append("(fetched_at < ? OR (fetched_at = ? AND id < ?))")
            params += [self._ts(after[0]), self._ts(after[0]), after[1]]
        where = " AND ".join(terms) or "1 = 1"
        with self._read() as cur:
            cur.execute(
                f"SELECT {ARTICLE_COLS} FROM articles WHERE {where} "
                "ORDER BY fetched_at DESC, id DESC LIMIT ?",
                (*params, limit),
            )
            return [self._article(r) for r in cur.fetchall()]

    # -- subscriptions -----------------------------------------------------
    def list_subscriptions_page(
        self, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Subscription]:
        """Oldest first (created_at, id), only rows strictly after the `after` key."""
        where, params = "1 = 1", []
        if after is not None:
            where = "(created_at > ? OR (created_at = ? AND id > ?))"
            params = [self._ts(after[0]), self._ts(after[0]), after[1]]
        with self._read() as cur:
            cur.execute(
                f"SELECT id FROM subscriptions WHERE {where} ORDER BY created_at, id LIMIT ?",
                (*params, limit),
            )
            ids = [r[0] for r in cur.fetchall()]
        return [self.get_subscription(sub_id) for sub_id in ids]

    def rotate_subscription_secret(
        self, sub_id: str, secret: str, *, previous_valid_until: datetime
    ) -> Subscription:
        """Make `secret` current; the old one signs too until `previous_valid_until`."""
        with self._write() as cur:
            cur.execute(
                "UPDATE subscriptions SET previous_secret = secret, previous_secret_expires_at = ?, "
                "secret = ?, updated_at = ? WHERE id = ?",
                (self._ts(previous_valid_until), secret, self._ts(utcnow()), sub_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no subscription with id {sub_id!r}")
            self._bump_subscriptions(cur)
        return self.get_subscription(sub_id)

    def get_signing_secrets(self, sub_id: str, *, now: datetime | None = None) -> list[str]:
        """The secrets an alert is signed with: the current one, then a previous one still in grace."""
        with self._read() as cur:
            cur.execute(
                "SELECT secret, previous_secret, previous_secret_expires_at FROM subscriptions WHERE id = ?",
                (sub_id,),
            )
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no subscription with id {sub_id!r}")
        return signing_secrets(row[0], row[1], self._dt(row[2]), now)

    def previous_secret_expiry(self, sub_id: str) -> datetime | None:
        """When the previous secret stops signing (None: there is none)."""
        with self._read() as cur:
            cur.execute("SELECT previous_secret_expires_at FROM subscriptions WHERE id = ?", (sub_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no subscription with id {sub_id!r}")
        return self._dt(row[0])

    # -- alerts ------------------------------------------------------------
    def list_alerts_page(
        self,
        *,
        limit: int,
        status: str | None = None,
        subscription_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[Alert]:
        """Newest first (created_at, id), optionally one status and/or one subscription."""
        terms: list[str] = []
        params: list[Any] = []
        if status is not None:
            terms.append("status = ?")
            params.append(status)
        if subscription_id is not None:
            terms.append("subscription_id = ?")
            params.append(subscription_id)
        if after is not None:
            terms.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params += [self._ts(after[0]), self._ts(after[0]), after[1]]
        where = " AND ".join(terms) or "1 = 1"
        with self._read() as cur:
            cur.execute(
                f"SELECT {ALERT_COLS} FROM alerts WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                (*params, limit),
            )
            return [self._alert(r) for r in cur.fetchall()]

    def retry_failed_alert(self, alert_id: str, *, now: datetime | None = None) -> Alert | None:
        """Set a failed alert back to pending, due `now`; None if it exists but is not failed.

        `attempts` is kept, so the next job id (`{id}-{attempts}`) is one no earlier
        attempt used, and a replay that fails again is dead-lettered at once.
        """
        with self._write() as cur:
            cur.execute(
                "UPDATE alerts SET status = 'pending', next_attempt_at = ? "
                "WHERE id = ? AND status = 'failed'",
                (self._ts(now or utcnow()), alert_id),
            )
            changed = cur.rowcount
        alert = self.get_alert(alert_id)  # NotFound if it does not exist
        return alert if changed else None
