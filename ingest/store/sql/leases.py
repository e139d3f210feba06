"""Named leases in SQL (`LeaseStore`): one row per periodic sweep, taken in one statement."""

from __future__ import annotations

from datetime import datetime

from ingest.store.sql.core import SQLCore


class SQLLeases(SQLCore):
    """The leases table."""

    def take_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Insert the lease, or take it over if it ended; PostgreSQL's conflict handling (a row lock,
        the WHERE re-checked on the committed row) and SQLite's write lock let one of two rivals win."""
        with self._statement() as cur:
            cur.execute(
                "INSERT INTO leases (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET owner = excluded.owner, until = excluded.until WHERE leases.until <= ? RETURNING owner",
                (name, owner, self._ts(until), self._ts(now)),
            )
            return cur.fetchone() is not None
