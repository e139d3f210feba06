"""Shared fixtures: real Redis (a db of its own per test run), real SQLite and PostgreSQL,
and loopback HTTP servers the tests start themselves (defined in testkit/, shared with the benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest.settings import Settings
from ingest.store.base import Store
from testkit.postgres import admin_or_throwaway, fresh_database
from testkit.servers import LoopbackServer, RawServer, RecordedRequest, Response, free_port

FIXTURES = Path(__file__).parent / "fixtures"


def _redis_base_url() -> str:
    """The machine's Redis if one answers on loopback, else an embedded server."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return url
    except redis.RedisError:
        from app.redis_server import start_embedded

        return start_embedded(Path(os.environ.get("TMPDIR", "/tmp")) / "ingest-test-redis")


# One atomic step: a marker deleted and set again in two round trips would let a concurrent test
# run claim this database in between, and the two runs would then read each other's jobs.
FLUSH_KEEPING_MARKER = """local m = redis.call('GET', KEYS[1]); redis.call('FLUSHDB');
if m then redis.call('SET', KEYS[1], m, 'EX', 3600) end"""


def flush_keeping_marker(client: redis.Redis) -> None:
    """Empty the run's database but for its run marker."""
    client.eval(FLUSH_KEEPING_MARKER, 1, "ingest-test-run")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL on a database number no other test run is using; flushed before and after."""
    base = _redis_base_url().rstrip("/")
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{db}")
        if client.set("ingest-test-run", str(os.getpid()), nx=True, ex=3600):
            flush_keeping_marker(client)
            yield f"{base}/{db}"
            client.flushdb()
            client.close()
            return
        client.close()
    raise RuntimeError("no free Redis database number (1-15) for this test run")


@pytest.fixture()
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the run's database; everything but the run marker is flushed after each test."""
    client = redis.Redis.from_url(redis_url)
    yield client
    flush_keeping_marker(client)
    client.close()


@pytest.fixture()
def settings(tmp_path: Path, redis_url: str) -> Settings:
    """Settings for one test: its own data dir and SQLite file, the run's Redis db, loopback allowed."""
    env = {
        "INGEST_DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": redis_url,
        "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        "INGEST_WEBHOOK_RETRY_SCHEDULE": "1,2,4",
        "INGEST_LOG_FORMAT": "console",
        "INGEST_LOG_LEVEL": "warning",
    }
    return Settings.from_env(env)


@pytest.fixture()
def http_server() -> Iterator[LoopbackServer]:
    """A loopback HTTP server, stopped after the test."""
    server = LoopbackServer()
    yield server
    server.close()


# -- databases: the `store` fixture runs a test against SQLite and PostgreSQL ----------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own (`ingest_test_<pid>`), dropped at the end.

    Created on the machine's PostgreSQL (TEST_POSTGRES_URL, default 127.0.0.1:5432 db `test`),
    or, if that does not answer, on a throwaway server started here.
    """
    admin, stop = admin_or_throwaway(
        os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    try:
        with fresh_database(admin, f"ingest_test_{os.getpid()}") as url:
            yield url
    finally:
        if stop:
            stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated store: a fresh SQLite file, or the run's PostgreSQL database emptied."""
    from ingest.store.postgres import PostgresStore
    from ingest.store.sqlite import SQLiteStore

    opened: SQLiteStore | PostgresStore
    if request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "ingest.db")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_url"))
        opened.reset()
    yield opened
    opened.close()


__all__ = ["FIXTURES", "LoopbackServer", "RawServer", "RecordedRequest", "Response", "free_port"]
