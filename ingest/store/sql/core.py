"""What every SQL aggregate stands on: the backend hooks, the cursor they yield, chunking.

The aggregates (`feeds`, `batches`, `articles`, `subscriptions`, `outbox` beside this module)
write their SQL once for both backends: SQLite and PostgreSQL agree on `INSERT ... ON CONFLICT
DO NOTHING RETURNING`, `DELETE ... WHERE id IN (SELECT ... LIMIT n)` and everything else used
there. Statements use `?` placeholders; the PostgreSQL backend rewrites them, so shared SQL must
never contain `%` or a literal `?`. A backend (`ingest/store/sqlite.py`, `postgres.py`) supplies
connections, transactions and timestamp conversion by implementing `SQLCore`'s hooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar, Protocol

# Rows per multi-row INSERT and keys per IN list: far below both backends' parameter limits.
CHUNK = 500


class Cursor(Protocol):
    """The DB-API subset both drivers' cursors share."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def marks(count: int, width: int = 1) -> str:
    """`?, ?` for an IN list, or `(?, ?), (?, ?)` for `count` rows of `width` values."""
    if width == 1:
        return ", ".join("?" * count)
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * count)


class SQLCore(ABC):
    """The hooks a backend implements; the aggregates use nothing else of it."""

    dialect: ClassVar[str]  # "sqlite" | "postgresql": picks the DDL tokens (ingest/store/migrations.py)

    @abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor inside a write transaction, committed on success."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads (no write lock taken)."""

    def _statement(self) -> AbstractContextManager[Cursor]:
        """A cursor for one statement that writes: a write transaction unless the backend has better."""
        return self._write()

    def _returning_each(self, cur: Cursor, sql: str, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Run `sql` once per parameter row; each run's first returned row, or None."""
        found = []
        for params in rows:
            cur.execute(sql, params)
            found.append(cur.fetchone())
        return found

    @abstractmethod
    def _ts(self, dt: datetime | None) -> Any:
        """A datetime as the backend stores it (always UTC)."""

    @abstractmethod
    def _dt(self, value: Any) -> datetime | None:
        """A stored timestamp back as an aware UTC datetime."""

    @abstractmethod
    def _lock_schema(self, cur: Cursor) -> None:
        """Serialize migrations across processes, inside the write transaction `cur` is in."""

    @abstractmethod
    def _has_table(self, cur: Cursor, name: str) -> bool: ...

    @abstractmethod
    def close(self) -> None: ...

    def ping(self) -> None:
        """Raises StoreError when the database does not answer (readiness checks)."""
        with self._read() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
