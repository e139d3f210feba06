"""The one migration runner: the backends supply only their connection and their lock.

An up-to-date schema is recognised by a read, without the write lock, so opening the store
never waits behind another process's long write transaction. Otherwise, inside one write
transaction under the backend's lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock),
the version is read again and each pending migration applied with its `schema_version` row.
"""

from __future__ import annotations

from ingest.log import get_logger
from ingest.models import utcnow
from ingest.store.migrations import LATEST, MIGRATIONS, SCHEMA_VERSION_TABLE, render
from ingest.store.sql.core import Cursor, SQLCore

log = get_logger(__name__)


def upgrade(db: SQLCore, target: int | None = None) -> int:
    """Apply the migrations above the current version up to `target` (default: all); return the version."""
    target = LATEST if target is None else target
    with db._read() as cur:
        current = _version(db, cur)
    if current >= target:
        return current
    with db._write() as cur:
        db._lock_schema(cur)
        cur.execute(SCHEMA_VERSION_TABLE)
        current = _version(db, cur)
        for version in range(current + 1, target + 1):
            _apply(db, cur, version)
            current = version
    return current


def _version(db: SQLCore, cur: Cursor) -> int:
    if not db._has_table(cur, "schema_version"):
        return 0
    cur.execute("SELECT coalesce(max(version), 0) FROM schema_version")
    return int(cur.fetchone()[0])


def _apply(db: SQLCore, cur: Cursor, version: int) -> None:
    for step in MIGRATIONS[version - 1]:
        action = render(step, db.dialect)
        if isinstance(action, str):
            cur.execute(action)
        elif action is not None:
            action(cur)
    cur.execute(
        "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
        (version, utcnow().isoformat(timespec="microseconds")),
    )
    log.info("store.migrated", backend=db.dialect, version=version)
