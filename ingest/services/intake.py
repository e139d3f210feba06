"""Accepting a feed's entries: new and changed ones become batches for the workers.

The same step serves polls and WebSub pushes. Batches are written to the database in the
transaction that marks their entries seen (with their content hash), then queued: if the
queue loses the job, `ingest.services.recovery` queues the batch again from the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest.log import get_logger
from ingest.models import Feed, RawEntry
from ingest.parse import entry_hash
from ingest.services.ports import BatchQueue, Metrics
from ingest.store.batches import BatchStore
from ingest.store.feeds import FeedStore

log = get_logger(__name__)


class IntakeStore(FeedStore, BatchStore, Protocol):
    """The store ports intake uses: seen entries (feeds) and the batches they are queued in."""


@dataclass(frozen=True)
class Accepted:
    """What one call queued."""

    new: int
    updated: int
    jobs: int


class Intake:
    """Turns a feed's current entries into queued batches of what is new or changed."""

    def __init__(self, store: IntakeStore, queue: BatchQueue, metrics: Metrics, *, batch_size: int) -> None:
        self.store = store
        self.queue = queue
        self.metrics = metrics
        self.batch_size = batch_size

    def accept(self, feed: Feed, entries: Sequence[RawEntry]) -> Accepted:
        """Queue entries never queued before, and entries whose content changed since (as updates)."""
        unique: dict[str, tuple[RawEntry, str]] = {}
        for entry in entries:
            unique.setdefault(entry.entry_key, (entry, entry_hash(entry)))
        seen = self.store.seen_entry_hashes(feed.id, list(unique))
        queued: list[RawEntry] = []
        record: dict[str, str] = {}
        new = updated = 0
        for key, (entry, digest) in unique.items():
            before = seen.get(key, "")
            if key not in seen:
                new += 1
            elif before is not None and before != digest:
                updated += 1
            else:
                if before is None:
                    record[key] = digest  # seen before hashes were kept: remember, do not re-queue
                continue
            queued.append(entry)
            record[key] = digest
        jobs = self._store_and_queue(feed, queued, record)
        self.metrics.count("ingest_entries_seen_total", value=len(entries))
        self.metrics.count("ingest_entries_new_total", value=new)
        return Accepted(new=new, updated=updated, jobs=jobs)

    def _store_and_queue(self, feed: Feed, queued: list[RawEntry], record: dict[str, str]) -> int:
        size = self.batch_size
        batches = [[e.to_dict() for e in queued[i : i + size]] for i in range(0, len(queued), size)]
        stored = self.store.add_batches(feed.id, batches, record) if record else []
        try:
            self.queue.enqueue(stored)
        except Exception as exc:  # the batches are in the database: recovery queues them
            log.warning(
                "batch_enqueue_failed", feed_id=feed.id, batch_ids=[b.id for b in stored], error=str(exc)
            )
        return len(batches)
