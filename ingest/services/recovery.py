"""Recovery: queue again, from the database, the batches whose job the queue lost or a dead worker held.

The poller writes every batch of accepted entries to `pending_batches` in the transaction that
marks them seen, then queues a job for it; the worker deletes the row once the pipeline
committed. So a pending row whose job cannot run any more is a batch that would otherwise be
lost. Every sweep, batches queued more than INGEST_RECOVERY_AFTER seconds ago are checked, and
one whose job the queue says is lost (`BatchQueue.why_lost`: gone, missing from the queue,
ended with the batch unfinished, or held by a worker whose heartbeat stopped) is queued again.
After INGEST_BATCH_MAX_ATTEMPTS queueings a batch is marked `failed` and kept. Running a batch
twice is harmless: nothing is stored or alerted twice (see `BatchRunner.rematch`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ingest.log import get_logger
from ingest.models import PendingBatch, utcnow
from ingest.services.ports import BatchQueue
from ingest.store.batches import BatchStore

log = get_logger(__name__)


class Recovery:
    """Finds stale pending batches and queues them again (or gives up on them)."""

    def __init__(self, store: BatchStore, queue: BatchQueue, *, after: float, max_attempts: int) -> None:
        self.store = store
        self.queue = queue
        self.after = after
        self.max_attempts = max_attempts

    def recover(self, *, after: float | None = None, now: datetime | None = None) -> int:
        """Queue again the stale batches whose job will not run; returns how many were queued."""
        cutoff = (now or utcnow()) - timedelta(seconds=self.after if after is None else after)
        requeued: list[PendingBatch] = []
        for batch in self.store.stale_batches(cutoff):
            why = self.queue.why_lost(batch)
            if why is None:
                continue
            bound = log.bind(batch_id=batch.id, feed_id=batch.feed_id, attempts=batch.attempts, reason=why)
            if batch.attempts >= self.max_attempts:
                self.store.fail_batch(batch.id, f"gave up after {batch.attempts} attempts; last: {why}")
                bound.error("batch_failed")
                continue
            again = self.store.requeue_batch(batch.id, error=why)
            if again is not None:
                requeued.append(again)
                bound.warning("batch_requeued", attempt=again.attempts)
        self.queue.enqueue(requeued)
        return len(requeued)
