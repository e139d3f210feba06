"""Shared fixtures: real Redis (a db of its own per test run), real SQLite and PostgreSQL,
and loopback HTTP servers the tests start themselves (defined in testkit/, shared with the benchmarks)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from ingest.settings import Settings
from ingest.store.base import Store
from testkit.postgres import start_postgres
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


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis URL on a database number no other test run is using; flushed before and after."""
    base = _redis_base_url().rstrip("/")
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{db}")
        if client.set("ingest-test-run", str(os.getpid()), nx=True, ex=3600):
            client.flushdb()
            client.set("ingest-test-run", str(os.getpid()), ex=3600)
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
    marker = client.get("ingest-test-run")
    with client.pipeline(transaction=True) as pipe:  # one step: no moment without the run's marker,
        pipe.flushdb()  # when another run or a benchmark looking for an empty database would take it
        if marker:
            pipe.set("ingest-test-run", marker, ex=3600)
        pipe.execute()
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
    import psycopg

    admin = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    stop: Callable[[], None] | None = None
    try:
        psycopg.connect(admin, connect_timeout=3).close()
    except psycopg.OperationalError:
        admin, stop = start_postgres()
    name = f"ingest_test_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    base = admin.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
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
