"""The storage interface: one Protocol, one implementation per backend.

The database is the record; Redis queues can always be rebuilt from it.
Every write is idempotent (unique keys), so a job that runs twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from ingest.models import (
    Alert,
    Article,
    ArticleFilter,
    Feed,
    PendingBatch,
    Subscription,
    SubscriptionOptions,
    WebSubSubscription,
)


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
    def add_feed(
        self, url: str, *, interval: int | None = None, title: str | None = None, fulltext: bool = False
    ) -> Feed:
        """Add a feed, or return the existing one with that URL (`fulltext=True` also switches it on)."""
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

    def seen_entry_hashes(self, feed_id: int, keys: Sequence[str]) -> dict[str, str | None]:
        """For the keys of `keys` this feed has queued before: the content hash queued last (or None)."""
        ...

    # -- pending batches: entries accepted, not yet processed (the queue's record) ----
    def add_batches(
        self, feed_id: int, batches: Sequence[Sequence[Mapping[str, Any]]], seen: Mapping[str, str]
    ) -> list[PendingBatch]:
        """In one transaction: store the batches (attempt 1, queued now) and mark `seen`; return them."""
        ...

    def get_batch(self, batch_id: int) -> PendingBatch | None:
        """The batch, or None once a worker finished it."""
        ...

    def finish_batch(self, batch_id: int) -> bool:
        """Delete the batch (its entries are stored); False if it was already finished."""
        ...

    def stale_batches(self, queued_before: datetime, *, limit: int = 500) -> list[PendingBatch]:
        """Pending batches last queued (or, never queued, created) before `queued_before`, oldest first."""
        ...

    def requeue_batch(self, batch_id: int, *, error: str | None = None) -> PendingBatch | None:
        """Count one more attempt, queued now; None if the batch was finished meanwhile."""
        ...

    def fail_batch(self, batch_id: int, error: str) -> None:
        """Give up on a batch: it stays, as `failed` with the reason, until an operator acts."""
        ...

    def count_batches(self, status: str = "pending") -> int: ...

    # -- feed state beyond one fetch -----------------------------------------
    def set_feed_status(self, feed_id: int, status: str, reason: str | None = None) -> Feed:
        """Mute (`gone`, `disabled`) or re-enable (`active`: errors reset, due now) a feed."""
        ...

    def move_feed(self, feed_id: int, new_url: str) -> Feed:
        """Give the feed a new URL (permanent redirect), keeping id, articles, seen entries; old URL kept."""
        ...

    def get_websub(self, feed_id: int) -> WebSubSubscription | None: ...

    def save_websub(self, sub: WebSubSubscription) -> None:
        """Insert or replace the feed's WebSub subscription."""
        ...

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

    def get_articles_by_entries(
        self, feed_id_entry_keys: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], Article]:
        """The stored articles of these (feed_id, entry_key) pairs, in few queries; absent ones left out."""
        ...

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

    def update_subscription(
        self,
        sub_id: str,
        *,
        name: str | None = None,
        query: str | None = None,
        webhook: str | None = None,
        secret: str | None = None,
        options: SubscriptionOptions | None = None,
    ) -> Subscription:
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

    def record_attempt(
        self,
        alert_id: str,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None,
        error: str | None,
    ) -> None: ...

    def pending_alerts(self, due_before: datetime, *, limit: int = 1000) -> list[Alert]:
        """Pending alerts whose next attempt is at or before `due_before` (the sweeper's input)."""
        ...

    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[Alert]: ...

    # -- the HTTP API: keyset pages, secret rotation, replay -----------------
    def find_feed_by_url(self, url: str) -> Feed | None: ...

    def list_feeds_page(self, *, limit: int, after_id: int | None = None) -> list[Feed]:
        """Feeds by id, the first `limit` after `after_id`."""
        ...

    def list_articles_page(
        self, filters: ArticleFilter, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Article]:
        """Newest first by (fetched_at, id), strictly after the `after` key."""
        ...

    def search_articles_page(
        self, query: str, filters: ArticleFilter, *, limit: int, offset: int = 0
    ) -> list[Article]:
        """Full-text search within `filters`, best first, `limit` rows from `offset`."""
        ...

    def list_subscriptions_page(
        self, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Subscription]:
        """Oldest first by (created_at, id), strictly after the `after` key."""
        ...

    def rotate_subscription_secret(
        self, sub_id: str, secret: str, *, previous_valid_until: datetime
    ) -> Subscription:
        """Make `secret` current; the old one keeps signing until `previous_valid_until`."""
        ...

    def get_signing_secrets(self, sub_id: str, *, now: datetime | None = None) -> list[str]:
        """Current secret first, then the previous one while its grace period lasts."""
        ...

    def previous_secret_expiry(self, sub_id: str) -> datetime | None: ...

    def list_alerts_page(
        self,
        *,
        limit: int,
        status: str | None = None,
        subscription_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[Alert]:
        """Newest first by (created_at, id), strictly after the `after` key."""
        ...

    def retry_failed_alert(self, alert_id: str, *, now: datetime | None = None) -> Alert | None:
        """A failed alert back to pending, due now; None if it is not failed (NotFound if missing)."""
        ...

    # -- delivery bookkeeping: subscription health, digests ---------------------
    def record_subscription_delivery(
        self, sub_id: str, *, ok: bool, at: datetime | None = None
    ) -> datetime | None:
        """Note a delivery outcome; return `failing_since` afterwards (None after a success)."""
        ...

    def get_delivery(
        self, alert_id: str, *, now: datetime | None = None
    ) -> tuple[Alert, Subscription, list[str]]:
        """What one delivery attempt needs: the alert, its subscription and its signing secrets."""
        ...

    def record_delivered(self, alert_id: str, sub_id: str, *, attempts: int) -> None:
        """A successful attempt: the alert delivered and its subscription healthy, in one transaction."""
        ...

    def subscription_alerts(self, sub_id: str, status: str, *, limit: int = 10_000) -> list[Alert]:
        """One subscription's alerts in one status, oldest first."""
        ...

    def held_subscription_ids(self) -> list[str]:
        """Subscriptions with alerts held for a digest."""
        ...

    def cut_digest(self, digest: Alert, *, before: datetime) -> Alert | None:
        """Insert `digest` and make the subscription's alerts held before `before` its members."""
        ...

    def release_held(self, sub_id: str) -> list[Alert]:
        """Held alerts back to pending (the subscription left digest mode); returns its pending alerts."""
        ...

    def digest_members(self, digest_id: str) -> list[Alert]:
        """The alerts a digest carries, oldest first."""
        ...
