"""What both SQL backends do alike over their lifetime: close, and migrate through the one runner."""

from __future__ import annotations

import threading
from typing import Any

from ingest.store.sql import migrate
from ingest.store.sql.core import SQLCore


class SQLLifecycle(SQLCore):
    """A backend holds one connection behind one lock; closing and upgrading need nothing else."""

    _lock: threading.RLock
    _conn: Any

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def upgrade(self, target: int | None = None) -> int:
        """Apply pending migrations (up to `target`, default all); return the schema version."""
        return migrate.upgrade(self, target)
