"""SQLite backend: one file shared by the poller, several workers and the CLI.

WAL lets readers run while one process writes; `busy_timeout` makes a writer
wait for another instead of failing; writes start with BEGIN IMMEDIATE so a
transaction never has to upgrade a read lock (which SQLite answers with an
immediate SQLITE_BUSY, busy timeout or not). One connection per store,
shared by the process's threads under a lock.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.errors import StoreError
from ingest.store.migrations import DATA_TABLES
from ingest.store.sql.articles import SQLArticles
from ingest.store.sql.batches import SQLBatches
from ingest.store.sql.claims import claim_in_transaction
from ingest.store.sql.core import Cursor
from ingest.store.sql.feeds import SQLFeeds
from ingest.store.sql.leases import SQLLeases
from ingest.store.sql.lifecycle import SQLLifecycle
from ingest.store.sql.outbox import SQLOutbox
from ingest.store.sql.subscriptions import SQLSubscriptions

BUSY_TIMEOUT_MS = 30_000
_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(query: str) -> str | None:
    """Free text as an FTS5 query: every word quoted (no operator injection), all required."""
    words = _WORD.findall(query)
    return " ".join(f'"{word}"' for word in words) if words else None


class SQLiteStore(SQLLifecycle, SQLFeeds, SQLBatches, SQLArticles, SQLSubscriptions, SQLOutbox, SQLLeases):
    """The default store: a SQLite file in WAL mode, schema migrated on open."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, *, upgrade: bool = True) -> None:
        """Open the file; `upgrade=False` leaves the schema as it is (tests, a separate migration step)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn: sqlite3.Connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        if upgrade:
            self.upgrade()

    # -- connection and transactions -----------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
                cur.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"sqlite: {exc}") from exc
                raise
            finally:
                cur.close()

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                yield cur
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite: {exc}") from exc
            finally:
                cur.close()

    def _ts(self, dt: datetime | None) -> Any:
        """Fixed-width UTC ISO text, so text comparison orders like time."""
        if dt is None:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC).isoformat(timespec="microseconds")

    def _dt(self, value: Any) -> datetime | None:
        if value is None:
            return None
        dt = datetime.fromisoformat(value)
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

    def _lock_schema(self, cur: Cursor) -> None:
        """Nothing to add: BEGIN IMMEDIATE already holds the database's one write lock."""

    def _has_table(self, cur: Cursor, name: str) -> bool:
        cur.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return bool(cur.fetchone()[0])

    # -- lifecycle -------------------------------------------------------------
    def reset(self) -> None:
        """Empty every data table (tests); the schema stays."""
        with self._write() as cur:
            for table in DATA_TABLES:
                cur.execute(f"DELETE FROM {table}")
            cur.execute("DELETE FROM sqlite_sequence")
            cur.execute("INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')")

    # -- the dialect-specific queries ----------------------------------------------
    def _match(self, query: str) -> tuple[str, str, list[Any]] | None:
        match = fts_query(query)
        if match is None:
            return None
        source = "articles_fts JOIN articles a ON a.rid = articles_fts.rowid WHERE articles_fts MATCH ?"
        return source, "bm25(articles_fts)", [match]

    def _claim_rows(
        self, owner: str, now: datetime, lease_until: datetime, subscriptions: int, per_subscription: int
    ) -> list[Sequence[Any]]:
        with self._write() as cur:
            return claim_in_transaction(
                cur, owner, self._ts(now), self._ts(lease_until), subscriptions, per_subscription
            )
