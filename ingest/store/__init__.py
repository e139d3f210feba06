"""The storage layer: `open_store(url)` picks the backend from the URL's scheme."""

from __future__ import annotations

from ingest.errors import ConfigError
from ingest.store.base import Store

__all__ = ["Store", "open_store"]

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(database_url: str, password: str | None = None) -> Store:
    """Open (and migrate) the store at `database_url`.

    `sqlite:///relative.db` or `sqlite:////absolute.db` (SQLAlchemy's spelling),
    `postgresql://...` or `postgres://...`. Backends are imported lazily so a
    SQLite deployment never loads psycopg. `password` goes to PostgreSQL apart from the URL.
    """
    if database_url.startswith(_SQLITE_PREFIX):
        path = database_url[len(_SQLITE_PREFIX) :]
        if not path or path == ":memory:":
            raise ConfigError(
                f"DATABASE_URL={database_url!r}: give a SQLite file path, "
                "e.g. sqlite:///data/ingest.db (in-memory databases cannot be shared)"
            )
        from ingest.store.sqlite import SQLiteStore

        return SQLiteStore(path)
    if database_url.startswith(_POSTGRES_SCHEMES):
        from ingest.store.postgres import PostgresStore

        return PostgresStore(database_url, password)
    scheme = database_url.split(":", 1)[0] if ":" in database_url else database_url
    raise ConfigError(
        f"DATABASE_URL scheme {scheme!r} is not supported: use sqlite:///path.db "
        "or postgresql://user@host/dbname"
    )
