"""The whole store, for the composition root: every aggregate's protocol plus the lifecycle.

Callers that need one or two aggregates type-hint those (`FeedStore`, `BatchStore`,
`ArticleStore`, `SubscriptionStore`, `OutboxStore`, each in its own module beside this one).
The database is the record; Redis queues can always be rebuilt from it. Every write is
idempotent (unique keys), so a job that runs twice changes nothing.
"""

from __future__ import annotations

from typing import Protocol

from ingest.store.articles import ArticleStore
from ingest.store.batches import BatchStore
from ingest.store.feeds import FeedStore
from ingest.store.leases import LeaseStore
from ingest.store.outbox import OutboxStore
from ingest.store.subscriptions import SubscriptionStore


class Store(FeedStore, BatchStore, ArticleStore, SubscriptionStore, OutboxStore, LeaseStore, Protocol):
    """What the composition root opens: `ingest.store.open_store(url)`."""

    def close(self) -> None: ...

    def ping(self) -> None:
        """Raise StoreError if the database does not answer (health checks)."""
        ...

    def upgrade(self) -> int:
        """Apply pending schema migrations (idempotent); return the schema version."""
        ...
