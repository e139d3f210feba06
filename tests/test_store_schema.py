"""The one DDL source and the one migration runner, on SQLite and PostgreSQL.

Released migrations must build exactly the schema they built when they shipped (kept as the
statements of that time in tests/fixtures/store/), and a database left at version 6 must
upgrade to the latest version with its data intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.clean.url import origin
from ingest.store.migrations import LATEST, MIGRATIONS, SCHEMA_VERSION_TABLE, render
from ingest.store.postgres import PostgresStore
from ingest.store.sqlite import SQLiteStore

FIXTURES = Path(__file__).parent / "fixtures" / "store"
RELEASED = 6
_T1 = datetime(2024, 5, 2, tzinfo=UTC)
WEBHOOKS = {
    "sub_plain": "https://Hooks.Example/ingest",
    "sub_port": "http://user:secret@10.1.2.3:8080/hook?token=abc",
    "sub_ipv6": "https://[::1]/h",
    "sub_broken": "http://[::1/h",  # stored before webhooks were validated: no origin, no crash
}


def _released_sql(backend: str) -> str:
    return (FIXTURES / f"schema_v{RELEASED}_{backend}.sql").read_text()


def _describe_sqlite(path: Path) -> dict[str, Any]:
    """Every schema object's SQL (whitespace folded), columns, indexes and foreign keys."""
    with sqlite3.connect(path) as conn:
        objects = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()
        tables = [name for kind, name, _, _ in objects if kind == "table"]
        return {
            "objects": [(k, n, t, " ".join((sql or "").split())) for k, n, t, sql in objects],
            "columns": {t: conn.execute(f"PRAGMA table_xinfo('{t}')").fetchall() for t in tables},
            "indexes": {t: conn.execute(f"PRAGMA index_list('{t}')").fetchall() for t in tables},
            "foreign_keys": {t: conn.execute(f"PRAGMA foreign_key_list('{t}')").fetchall() for t in tables},
            "meta": conn.execute("SELECT key, value FROM meta").fetchall(),
        }


def _describe_postgres(url: str) -> dict[str, Any]:
    """Columns (types, defaults, identity, generated), constraints and index definitions."""
    with psycopg.connect(url) as conn:
        return {
            "columns": conn.execute(
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default, "
                "is_identity, identity_generation, is_generated, generation_expression "
                "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 3"
            ).fetchall(),
            "constraints": conn.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
            ).fetchall(),
            "indexes": conn.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = 'public' ORDER BY 1, 2"
            ).fetchall(),
            "meta": conn.execute("SELECT key, value FROM meta").fetchall(),
        }


class Databases:
    """Fresh empty databases of one backend: a path (SQLite) or URL (PostgreSQL) each."""

    def __init__(self, backend: str, tmp_path: Path, postgres_url: str | None) -> None:
        self.backend, self.tmp_path, self.postgres_url = backend, tmp_path, postgres_url
        self.created: list[str] = []

    def new(self) -> str:
        name = f"db{len(self.created)}"
        self.created.append(name)
        if self.backend == "sqlite":
            return str(self.tmp_path / f"{name}.db")
        assert self.postgres_url is not None
        full = f"{self.postgres_url.rsplit('/', 1)[1]}_{name}"
        with psycopg.connect(self._admin(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {full} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {full}")
        return f"{self.postgres_url.rsplit('/', 1)[0]}/{full}"

    def _admin(self) -> str:
        assert self.postgres_url is not None
        return self.postgres_url.rsplit("/", 1)[0] + "/postgres"

    def drop_all(self) -> None:
        if self.backend == "postgresql" and self.postgres_url is not None:
            prefix = self.postgres_url.rsplit("/", 1)[1]
            with psycopg.connect(self._admin(), autocommit=True) as conn:
                for name in self.created:
                    conn.execute(f"DROP DATABASE IF EXISTS {prefix}_{name} WITH (FORCE)")

    def open(self, where: str, *, upgrade: bool = True) -> SQLiteStore | PostgresStore:
        if self.backend == "sqlite":
            return SQLiteStore(where, upgrade=upgrade)
        return PostgresStore(where, upgrade=upgrade)

    @contextmanager
    def cursor(self, where: str) -> Iterator[Any]:
        """A raw DB-API cursor with `?` placeholders on either backend."""
        store = self.open(where, upgrade=False)
        try:
            with store._read() as cur:
                yield cur
        finally:
            store.close()

    def describe(self, where: str) -> dict[str, Any]:
        return _describe_sqlite(Path(where)) if self.backend == "sqlite" else _describe_postgres(where)

    def run(self, where: str, script: str, params: list[tuple[Any, ...]] | None = None) -> None:
        """Execute a script (statements separated by `;`), then `params` as (sql, values) pairs."""
        if self.backend == "sqlite":
            with sqlite3.connect(where) as conn:
                conn.executescript(script)
                for sql, values in params or []:
                    conn.execute(sql, values)
        else:
            with psycopg.connect(where, autocommit=True) as conn:
                conn.execute(script.encode())
                for sql, values in params or []:
                    conn.execute(sql.replace("?", "%s"), values)

    def released(self, where: str) -> None:
        """Build the database as the release of version 6 did: its statements, its version rows."""
        versions = [
            (
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (n, "2024-05-01T00:00:00+00:00"),
            )
            for n in range(1, RELEASED + 1)
        ]
        self.run(where, _released_sql(self.backend) + SCHEMA_VERSION_TABLE + ";", versions)


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    dbs = Databases(request.param, tmp_path, url)
    yield dbs
    dbs.drop_all()


def test_released_migrations_build_the_released_schema(databases: Databases) -> None:
    """The one DDL source, run by the one runner up to 6, equals the statements that shipped as 1-6."""
    released, rebuilt = databases.new(), databases.new()
    databases.released(released)
    store = databases.open(rebuilt, upgrade=False)
    try:
        assert store.upgrade(RELEASED) == RELEASED
    finally:
        store.close()
    assert databases.describe(rebuilt) == databases.describe(released)


def test_version_6_database_upgrades_to_latest_with_its_data(databases: Databases) -> None:
    """A database as version 6 left it opens at the latest version: the schema of a new database,
    its rows intact, every subscription's receiver origin filled in from its webhook."""
    old, new = databases.new(), databases.new()
    databases.released(old)
    rows = [
        (
            "INSERT INTO subscriptions (id, name, query, webhook, secret, created_at, updated_at) "
            "VALUES (?, ?, 'climate', ?, 'whsec_c2VjcmV0', ?, ?)",
            (sub_id, sub_id, webhook, "2024-05-01T00:00:00+00:00", "2024-05-01T00:00:00+00:00"),
        )
        for sub_id, webhook in WEBHOOKS.items()
    ]
    rows.append(
        (
            "INSERT INTO alerts (id, subscription_id, story_id, article_id, matched_terms, created_at) "
            "VALUES ('msg_1', 'sub_port', 's1', 'a1', '[\"climate\"]', ?)",
            ("2024-05-01T00:00:00+00:00",),
        )
    )
    databases.run(old, "", rows)
    upgraded = databases.open(old)
    try:
        assert upgraded.upgrade() == LATEST
        assert {s.id: s.webhook for s in upgraded.list_subscriptions()} == WEBHOOKS
        assert upgraded.get_alert("msg_1").matched_terms == ["climate"]
        claims = upgraded.claim_alerts(
            "sender", now=_T1, lease_until=_T1 + timedelta(seconds=30), subscriptions=5, per_subscription=5
        )
        assert [(c.alert.id, c.alert.attempts) for c in claims] == [("msg_1", 1)]
    finally:
        upgraded.close()
    databases.open(new).close()
    assert databases.describe(old) == databases.describe(new)
    with databases.cursor(old) as cur:
        cur.execute("SELECT id, origin FROM subscriptions ORDER BY id")
        expected = {sub_id: origin(url) for sub_id, url in WEBHOOKS.items() if sub_id != "sub_broken"}
        assert dict(cur.fetchall()) == {**expected, "sub_broken": None}
    assert origin(WEBHOOKS["sub_port"]) == "http://10.1.2.3:8080"


def test_runner_applies_the_rest_in_order_and_is_idempotent(databases: Databases) -> None:
    """Stopped at 3, the runner later applies 4 up to the latest; running again changes nothing."""
    stepwise, direct = databases.new(), databases.new()
    store = databases.open(stepwise, upgrade=False)
    try:
        assert store.upgrade(3) == 3
        assert store.upgrade(2) == 3  # never downwards
        assert store.upgrade() == LATEST
        assert store.upgrade() == LATEST
    finally:
        store.close()
    databases.open(direct).close()
    assert databases.describe(stepwise) == databases.describe(direct)
    with databases.cursor(stepwise) as cur:
        cur.execute("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == list(range(1, LATEST + 1))


def test_steps_render_per_dialect() -> None:
    """Tokens become each dialect's types; a dialect-specific step is skipped where it has no entry."""
    feeds = render(MIGRATIONS[0][0], "postgresql")
    assert isinstance(feeds, str) and "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" in feeds
    assert "TIMESTAMPTZ NOT NULL" in feeds and "$" not in feeds
    lite = render(MIGRATIONS[0][0], "sqlite")
    assert isinstance(lite, str) and "INTEGER PRIMARY KEY AUTOINCREMENT" in lite and "TIMESTAMPTZ" not in lite
    triggers = [step for step in MIGRATIONS[0] if isinstance(step, dict) and "postgresql" not in step]
    assert triggers and all(render(step, "postgresql") is None for step in triggers)
    with pytest.raises(KeyError):
        render("CREATE TABLE x (at $timestamp)", "sqlite")
