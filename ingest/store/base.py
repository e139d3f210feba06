"""The storage interface: one Protocol, one implementation per backend.

The database is the record; Redis queues can always be rebuilt from it.
Every write is idempotent (unique keys), so a job that runs twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from ingest.models import Alert, Article, Feed, Subscription


class Store(Protocol):
    """What the pipeline, workers and CLI need from a database."""

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None: ...

    def ping(self) -> None:
        """Raise StoreError if the database does not answer (health checks)."""
        ...

    def upgrade(self) -> int:
        """Apply pending schema migrations (idempotent); return the schema version."""
        ...

    # -- feeds -------------------------------------------------------------
    def add_feed(self, url: str, *, interval: int | None = None, title: str | None = None) -> Feed:
        """Add a feed, or return the existing one with that URL."""
        ...

    def get_feed(self, feed_id: int) -> Feed: ...

    def list_feeds(self) -> list[Feed]: ...

    def remove_feed(self, feed_id: int) -> None: ...

    def due_feeds(self, now: datetime) -> list[Feed]:
        """Active feeds whose next poll time has come (or that were never polled)."""
        ...

    def record_fetch(self, feed: Feed) -> None:
        """Persist the fetch-state fields of `feed` (etag, times, errors, next poll, title)."""
        ...

    # -- entries already seen (poller-side identity) -----------------------
    def unseen_entry_keys(self, feed_id: int, keys: Sequence[str]) -> set[str]:
        """The keys of `keys` that this feed has never queued."""
        ...

    def mark_entries_seen(self, feed_id: int, keys: Iterable[str]) -> None: ...

    # -- articles ----------------------------------------------------------
    def add_articles(self, articles: Sequence[Article]) -> list[Article]:
        """Insert in one batch; return only the articles that were not stored before."""
        ...

    def get_article(self, article_id: str) -> Article: ...

    def find_article_by_url(self, url: str) -> Article | None: ...

    def list_articles(self, *, limit: int = 50) -> list[Article]:
        """Newest first."""
        ...

    def update_article(self, article: Article) -> None:
        """Replace the content of entry (feed_id, entry_key); sets `updated`, keeps id and story_id."""
        ...

    def get_article_by_entry(self, feed_id: int, entry_key: str) -> Article | None: ...

    def articles_in_story(self, story_id: str) -> list[Article]:
        """Oldest first."""
        ...

    def search_articles(self, query: str, *, limit: int = 50) -> list[Article]:
        """Full-text: articles whose title or text contain every word of `query`, best first."""
        ...

    def delete_articles_older_than(self, cutoff: datetime, *, batch: int = 1000) -> int:
        """Retention: delete articles fetched before `cutoff` in batches; return how many."""
        ...

    # -- subscriptions -----------------------------------------------------
    def add_subscription(self, sub: Subscription) -> Subscription: ...

    def get_subscription(self, sub_id: str) -> Subscription: ...

    def list_subscriptions(self) -> list[Subscription]: ...

    def set_subscription_status(self, sub_id: str, status: str, reason: str | None) -> None: ...

    def update_subscription(self, sub_id: str, *, name: str | None = None, query: str | None = None,
                            webhook: str | None = None, secret: str | None = None) -> Subscription:
        """Change the given fields (None: unchanged); return the stored subscription."""
        ...

    def remove_subscription(self, sub_id: str) -> None:
        """Remove the subscription and its alerts."""
        ...

    def subscriptions_version(self) -> str:
        """Changes whenever a subscription is added, changed or removed (matcher reload key)."""
        ...

    # -- alerts (the outbox) ---------------------------------------------
    def add_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Insert; unique on (subscription_id, story_id). Return only the new ones."""
        ...

    def get_alert(self, alert_id: str) -> Alert: ...

    def record_attempt(self, alert_id: str, *, status: str, attempts: int,
                       next_attempt_at: datetime | None, error: str | None) -> None: ...

    def pending_alerts(self, due_before: datetime, *, limit: int = 1000) -> list[Alert]:
        """Pending alerts whose next attempt is at or before `due_before` (the sweeper's input)."""
        ...

    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[Alert]: ...
