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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.errors import StoreError
from ingest.log import get_logger
from ingest.models import Article, ArticleFilter, utcnow
from ingest.store import migrations
from ingest.store._pages import PagedSQLStore
from ingest.store._sql import ARTICLE_FIELDS, Cursor

log = get_logger(__name__)

BUSY_TIMEOUT_MS = 30_000
_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(query: str) -> str | None:
    """Free text as an FTS5 query: every word quoted (no operator injection), all required."""
    words = _WORD.findall(query)
    return " ".join(f'"{word}"' for word in words) if words else None


class SQLiteStore(PagedSQLStore):
    """The default store: a SQLite file in WAL mode, schema migrated on open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
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

    # -- lifecycle -------------------------------------------------------------
    def upgrade(self) -> int:
        """Apply pending migrations under BEGIN IMMEDIATE (one process at a time); return the version.

        An up-to-date schema is recognised by a read, without the write lock, so opening the
        store never waits behind another process's long write transaction.
        """
        with self._read() as cur:
            cur.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
            if cur.fetchone()[0]:
                cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
                current = int(cur.fetchone()[0])
                if current >= len(migrations.SQLITE):
                    return current
        with self._write() as cur:
            cur.execute(migrations.SCHEMA_VERSION_TABLE)
            cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
            current = int(cur.fetchone()[0])
            for version, statements in migrations.pending(migrations.SQLITE, current):
                for statement in statements:
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, self._ts(utcnow())),
                )
                log.info("store.migrated", backend="sqlite", version=version)
                current = version
        return current

    def reset(self) -> None:
        """Empty every data table (tests); the schema stays."""
        with self._write() as cur:
            for table in migrations.DATA_TABLES:
                cur.execute(f"DELETE FROM {table}")
            cur.execute("DELETE FROM sqlite_sequence")
            cur.execute("INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')")

    # -- full-text search ------------------------------------------------------
    def search_articles(self, query: str, *, limit: int = 50) -> list[Article]:
        """Articles whose title or text contain every word of `query`, best match first."""
        match = fts_query(query)
        if match is None:
            return []
        columns = ", ".join(f"a.{name}" for name in ARTICLE_FIELDS)
        with self._read() as cur:
            cur.execute(
                f"SELECT {columns} FROM articles_fts JOIN articles a ON a.rid = articles_fts.rowid "
                "WHERE articles_fts MATCH ? ORDER BY bm25(articles_fts), a.fetched_at DESC LIMIT ?",
                (match, limit),
            )
            return [self._article(r) for r in cur.fetchall()]

    def search_articles_page(
        self, query: str, filters: ArticleFilter, *, limit: int, offset: int = 0
    ) -> list[Article]:
        """Full-text search within `filters`, best match first, `limit` rows from `offset`."""
        match = fts_query(query)
        if match is None:
            return []
        terms, params = self._filter_sql(filters, "a.")
        where = " ".join(f"AND {term}" for term in terms)
        columns = ", ".join(f"a.{name}" for name in ARTICLE_FIELDS)
        with self._read() as cur:
            cur.execute(
                f"SELECT {columns} FROM articles_fts JOIN articles a ON a.rid = articles_fts.rowid "
                f"WHERE articles_fts MATCH ? {where} "
                "ORDER BY bm25(articles_fts), a.fetched_at DESC, a.id LIMIT ? OFFSET ?",
                (match, *params, limit, offset),
            )
            return [self._article(r) for r in cur.fetchall()]
