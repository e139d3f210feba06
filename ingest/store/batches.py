"""The batches aggregate: entries accepted by the poller and not yet processed (the queue's record).

The poller writes a batch in the transaction that marks its entries seen; a worker deletes it once
the pipeline committed; the recovery sweeper queues stale ones again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from ingest.models import PendingBatch


class BatchStore(Protocol):
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
