"""Pending batches in SQL (`BatchStore`): the record of entries accepted but not yet processed.

`add_batches` marks the entries seen in the same transaction (`feeds.upsert_seen`), so an entry
is either not seen (polled again) or recorded here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ingest.models import PendingBatch, utcnow
from ingest.store.sql.core import SQLCore
from ingest.store.sql.feeds import upsert_seen

BATCH_COLS = "id, feed_id, payload, status, attempts, created_at, queued_at, last_error"


class SQLBatches(SQLCore):
    """The pending_batches table."""

    def _batch(self, r: Sequence[Any]) -> PendingBatch:
        return PendingBatch(
            id=int(r[0]),
            feed_id=int(r[1]),
            entries=json.loads(r[2]),
            status=r[3],
            attempts=int(r[4]),
            created_at=self._dt(r[5]),
            queued_at=self._dt(r[6]),
            last_error=r[7],
        )

    def add_batches(
        self, feed_id: int, batches: Sequence[Sequence[Mapping[str, Any]]], seen: Mapping[str, str]
    ) -> list[PendingBatch]:
        """In one transaction: store the batches (attempt 1, queued now) and mark `seen`; return them."""
        now = utcnow()
        stored: list[PendingBatch] = []
        with self._write() as cur:
            for batch in batches:
                cur.execute(
                    "INSERT INTO pending_batches (feed_id, payload, status, attempts, created_at, "
                    "queued_at) VALUES (?, ?, 'pending', 1, ?, ?) RETURNING id",
                    (feed_id, json.dumps(list(batch)), self._ts(now), self._ts(now)),
                )
                stored.append(
                    PendingBatch(
                        id=int(cur.fetchone()[0]),
                        feed_id=feed_id,
                        entries=[dict(e) for e in batch],
                        attempts=1,
                        created_at=now,
                        queued_at=now,
                    )
                )
            if seen:
                upsert_seen(cur, self._ts(now), feed_id, seen)
        return stored

    def get_batch(self, batch_id: int) -> PendingBatch | None:
        """The batch, or None once a worker finished it."""
        with self._read() as cur:
            cur.execute(f"SELECT {BATCH_COLS} FROM pending_batches WHERE id = ?", (batch_id,))
            row = cur.fetchone()
        return self._batch(row) if row else None

    def finish_batch(self, batch_id: int) -> bool:
        """Delete the batch (its entries are stored); False if it was already finished."""
        with self._write() as cur:
            cur.execute("DELETE FROM pending_batches WHERE id = ?", (batch_id,))
            return cur.rowcount > 0

    def stale_batches(self, queued_before: datetime, *, limit: int = 500) -> list[PendingBatch]:
        """Pending batches last queued (or, never queued, created) before `queued_before`, oldest first."""
        with self._read() as cur:
            cur.execute(
                f"SELECT {BATCH_COLS} FROM pending_batches WHERE status = 'pending' "
                "AND coalesce(queued_at, created_at) < ? "
                "ORDER BY coalesce(queued_at, created_at), id LIMIT ?",
                (self._ts(queued_before), limit),
            )
            return [self._batch(r) for r in cur.fetchall()]

    def requeue_batch(self, batch_id: int, *, error: str | None = None) -> PendingBatch | None:
        """Count one more attempt, queued now (the caller then queues its job); None if finished meanwhile."""
        with self._write() as cur:
            cur.execute(
                "UPDATE pending_batches SET attempts = attempts + 1, queued_at = ?, "
                "last_error = coalesce(?, last_error) WHERE id = ? AND status = 'pending'",
                (self._ts(utcnow()), error, batch_id),
            )
            if cur.rowcount == 0:
                return None
        return self.get_batch(batch_id)

    def fail_batch(self, batch_id: int, error: str) -> None:
        """Give up on a batch: it stays, as `failed` with the reason, until an operator acts."""
        with self._write() as cur:
            cur.execute(
                "UPDATE pending_batches SET status = 'failed', last_error = ? WHERE id = ?", (error, batch_id)
            )

    def count_batches(self, status: str = "pending") -> int:
        """How many batches are in this state (metrics, tests, the soak)."""
        with self._read() as cur:
            cur.execute("SELECT count(*) FROM pending_batches WHERE status = ?", (status,))
            return int(cur.fetchone()[0])
