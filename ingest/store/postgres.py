"""PostgreSQL backend (psycopg 3): same semantics as the SQLite store.

One autocommit connection per store, shared by the process's threads under a
lock; writes run in explicit transactions. A connection found broken (or that
fails a ping after sitting idle) is replaced before the next operation, so a
database restart costs at most the operation that was running.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import psycopg

from ingest.errors import NotFound, StoreError
from ingest.log import get_logger
from ingest.models import Article, ArticleFilter, utcnow
from ingest.store import migrations
from ingest.store._pages import PagedSQLStore
from ingest.store._sql import ARTICLE_COLS, Cursor

log = get_logger(__name__)

CONNECT_TIMEOUT = 10
IDLE_PING_SECONDS = 30.0
_WORD = re.compile(r"\w+", re.UNICODE)
# A delivered alert and its subscription's health in one statement (atomic on its own, so no
# BEGIN and COMMIT): the subscription is touched only if the alert exists.
_DELIVERED_SQL = (
    "WITH a AS (UPDATE alerts SET status = 'delivered', attempts = ?, next_attempt_at = NULL, "
    "last_error = NULL, delivered_at = coalesce(delivered_at, ?) WHERE id = ? RETURNING 1), "
    "s AS (UPDATE subscriptions SET failing_since = NULL, last_success_at = ? "
    "WHERE id = ? AND EXISTS (SELECT 1 FROM a)) "
    "SELECT count(*) FROM a"
)  # PostgreSQL runs every data-modifying CTE, read or not


class _QmarkCursor:
    """A psycopg cursor that accepts the shared SQL's `?` placeholders."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any:
        return self._cur.executemany(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


class PostgresStore(PagedSQLStore):
    """A store on a PostgreSQL database; the schema is migrated on open."""

    def __init__(self, url: str, password: str | None = None) -> None:
        self.url = url
        self._password = password  # apart from the URL, so no character needs escaping
        self._lock = threading.RLock()
        self._conn = self._connect()
        self._last_used = time.monotonic()
        self.upgrade()

    # -- connection and transactions -----------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(
                self.url, password=self._password, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            )
            conn.execute("SET TIME ZONE 'UTC'")
            return conn
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    def _healthy_conn(self) -> psycopg.Connection[Any]:
        """The connection, replaced first if it is known broken or fails a ping after idling."""
        conn = self._conn
        if not (conn.closed or conn.broken) and time.monotonic() - self._last_used > IDLE_PING_SECONDS:
            with suppress(psycopg.Error):  # on a dead link this sets `broken`
                conn.execute("SELECT 1")
        if conn.closed or conn.broken:
            log.warning("store.reconnect", backend="postgresql")
            if not conn.closed:
                conn.close()
            self._conn = self._connect()
        self._last_used = time.monotonic()
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self._lock:
            conn = self._healthy_conn()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield _QmarkCursor(cur)
            except psycopg.Error as exc:
                raise StoreError(f"postgresql: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self._lock:
            conn = self._healthy_conn()
            try:
                with conn.cursor() as cur:
                    yield _QmarkCursor(cur)
            except psycopg.Error as exc:
                raise StoreError(f"postgresql: {exc}") from exc

    def _ts(self, dt: datetime | None) -> Any:
        if dt is None:
            return None
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

    def _dt(self, value: Any) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    # -- lifecycle -------------------------------------------------------------
    def upgrade(self) -> int:
        """Apply pending migrations under an advisory lock (one process at a time); return the version."""
        with self._write() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(?)", (migrations.PG_MIGRATION_LOCK,))
            cur.execute(migrations.SCHEMA_VERSION_TABLE)
            cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
            current = int(cur.fetchone()[0])
            for version, statements in migrations.pending(migrations.POSTGRES, current):
                for statement in statements:
                    cur.execute(statement)
                cur.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, utcnow().isoformat()),
                )
                log.info("store.migrated", backend="postgresql", version=version)
                current = version
        return current

    def reset(self) -> None:
        """Empty every data table (tests); the schema stays."""
        with self._write() as cur:
            cur.execute(f"TRUNCATE {', '.join(migrations.DATA_TABLES)} RESTART IDENTITY CASCADE")

    # -- delivery ---------------------------------------------------------------
    def record_delivered(self, alert_id: str, sub_id: str, *, attempts: int) -> None:
        """The shared two-UPDATE transaction as one statement: 1 round trip instead of 4."""
        at = self._ts(utcnow())
        with self._read() as cur:  # autocommit: the statement is its own transaction
            cur.execute(_DELIVERED_SQL, (attempts, at, alert_id, at, sub_id))
            if cur.fetchone()[0] == 0:
                raise NotFound(f"no alert with id {alert_id!r}")

    # -- full-text search ------------------------------------------------------
    def search_articles(self, query: str, *, limit: int = 50) -> list[Article]:
        """Articles whose title or text contain every word of `query`, best match first."""
        words = _WORD.findall(query)
        if not words:
            return []
        with self._read() as cur:
            cur.execute(
                f"SELECT {ARTICLE_COLS} FROM articles, plainto_tsquery('simple', ?) q "
                "WHERE search @@ q ORDER BY ts_rank(search, q) DESC, fetched_at DESC LIMIT ?",
                (" ".join(words), limit),
            )
            return [self._article(r) for r in cur.fetchall()]

    def search_articles_page(
        self, query: str, filters: ArticleFilter, *, limit: int, offset: int = 0
    ) -> list[Article]:
        """Full-text search within `filters`, best match first, `limit` rows from `offset`."""
        words = _WORD.findall(query)
        if not words:
            return []
        terms, params = self._filter_sql(filters)
        where = " ".join(f"AND {term}" for term in terms)
        with self._read() as cur:
            cur.execute(
                f"SELECT {ARTICLE_COLS} FROM articles, plainto_tsquery('simple', ?) q "
                f"WHERE search @@ q {where} "
                "ORDER BY ts_rank(search, q) DESC, fetched_at DESC, id LIMIT ? OFFSET ?",
                (" ".join(words), *params, limit, offset),
            )
            return [self._article(r) for r in cur.fetchall()]
