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
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

import psycopg

from ingest.errors import StoreError
from ingest.log import get_logger
from ingest.store.migrations import DATA_TABLES, PG_MIGRATION_LOCK
from ingest.store.sql.articles import SQLArticles
from ingest.store.sql.batches import SQLBatches
from ingest.store.sql.claims import POSTGRES_CLAIM, postgres_params
from ingest.store.sql.core import Cursor
from ingest.store.sql.feeds import SQLFeeds
from ingest.store.sql.leases import SQLLeases
from ingest.store.sql.lifecycle import SQLLifecycle
from ingest.store.sql.outbox import SQLOutbox
from ingest.store.sql.subscriptions import SQLSubscriptions

log = get_logger(__name__)

CONNECT_TIMEOUT = 10
IDLE_PING_SECONDS = 2.0  # a connection idle this long is pinged before use: a restarted server costs no job
_WORD = re.compile(r"\w+", re.UNICODE)


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

    def returning_each(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """`executemany` with RETURNING: pipelined, one round trip for all rows."""
        if not rows:
            return []
        self._cur.executemany(sql.replace("?", "%s"), rows, returning=True)
        found = [self._cur.fetchone()]
        while self._cur.nextset():
            found.append(self._cur.fetchone())
        return found

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


class PostgresStore(SQLLifecycle, SQLFeeds, SQLBatches, SQLArticles, SQLSubscriptions, SQLOutbox, SQLLeases):
    """A store on a PostgreSQL database; the schema is migrated on open."""

    dialect = "postgresql"

    def __init__(self, url: str, password: str | None = None, *, upgrade: bool = True) -> None:
        """Connect; `upgrade=False` leaves the schema as it is (tests, a separate migration step)."""
        self.url = url
        self._password = password  # apart from the URL, so no character needs escaping
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] = self._connect()
        self._last_used = time.monotonic()
        if upgrade:
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

    def _statement(self) -> AbstractContextManager[Cursor]:
        """Autocommit: one statement is a transaction on its own, without BEGIN and COMMIT round trips."""
        return self._read()

    def _returning_each(self, cur: Cursor, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        assert isinstance(cur, _QmarkCursor)
        return cur.returning_each(sql, rows)

    def _ts(self, dt: datetime | None) -> Any:
        if dt is None:
            return None
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

    def _dt(self, value: Any) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def _lock_schema(self, cur: Cursor) -> None:
        """A transaction-scoped advisory lock: one process migrates, the others wait and find it done."""
        cur.execute("SELECT pg_advisory_xact_lock(?)", (PG_MIGRATION_LOCK,))

    def _has_table(self, cur: Cursor, name: str) -> bool:
        cur.execute("SELECT to_regclass(?) IS NOT NULL", (name,))
        return bool(cur.fetchone()[0])

    # -- lifecycle -------------------------------------------------------------
    def reset(self) -> None:
        """Empty every data table (tests); the schema stays."""
        with self._write() as cur:
            cur.execute(f"TRUNCATE {', '.join(DATA_TABLES)} RESTART IDENTITY CASCADE")

    # -- the dialect-specific queries ----------------------------------------------
    def _match(self, query: str) -> tuple[str, str, list[Any]] | None:
        words = _WORD.findall(query)
        if not words:
            return None
        source = "articles a, plainto_tsquery('simple', ?) q WHERE a.search @@ q"
        return source, "ts_rank(a.search, q) DESC", [" ".join(words)]

    def _claim_rows(
        self, owner: str, now: datetime, lease_until: datetime, subscriptions: int, per_subscription: int
    ) -> list[Sequence[Any]]:
        params = postgres_params(owner, self._ts(now), self._ts(lease_until), subscriptions, per_subscription)
        with self._statement() as cur:
            cur.execute(POSTGRES_CLAIM, params)
            return cur.fetchall()
