"""What the services need from the outside world, as Protocols.

Services take these as constructor arguments; the composition root (`app/runtime.py`)
passes the adapters: RQ for `BatchQueue` (workers/queues.py), Redis for the rest.
The store's own Protocols are in `ingest/store/`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from ingest.dedup.fingerprint import DedupItem
from ingest.models import DedupResult, FetchResult, PendingBatch


class BatchQueue(Protocol):
    """Where accepted batches wait for a worker. The database row is the record; this is the signal."""

    def enqueue(self, batches: Sequence[PendingBatch]) -> None:
        """Queue one job per batch (its id and attempt); raises on a queue outage (recovery re-queues)."""
        ...

    def why_lost(self, batch: PendingBatch) -> str | None:
        """Why the batch's current job will never finish it, or None while it still may."""
        ...


class Metrics(Protocol):
    """Counters and histograms (names and labels: `ingest.metrics.METRICS`); never raises."""

    def count(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1) -> None: ...

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None: ...


class StoryIndex(Protocol):
    """Assigns articles to stories, atomically across workers (`ingest.dedup.index.Deduplicator`)."""

    def assign(self, items: Sequence[DedupItem]) -> list[DedupResult]: ...

    def boilerplate(self, domains: Mapping[str, Mapping[int, int]]) -> dict[str, frozenset[int]]:
        """Of each site's sentence keys (with how many of the batch's stories hold each), those
        its other stories repeat (left out of comparisons)."""
        ...

    def count_sentences(self, docs: Iterable[tuple[str, Iterable[int]]]) -> None:
        """Count the sentence keys of (site, keys) of stories just assigned."""
        ...


# GET one article page (full-text feeds): a guarded HTTP client bound to the service's limits.
PageFetcher = Callable[[str], FetchResult]


class Wakeup(Protocol):
    """Tells the webhook sender that new alerts are due, so it need not wait for its next look."""

    def wake(self) -> None: ...
