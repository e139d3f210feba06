"""Shared fixtures: real Redis (a db of its own per test run), real SQLite,
and loopback HTTP servers the tests start themselves."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from ingest.settings import Settings
from ingest.store.base import Store

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
    client.flushdb()
    if marker:
        client.set("ingest-test-run", marker, ex=3600)
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


@dataclass
class Response:
    """A canned response of the loopback server."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["RecordedRequest"], Response]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 whose routes the test sets.

    `routes[path]` is a Response or a callable taking the RecordedRequest;
    every request is recorded in `requests`.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.requests: list[RecordedRequest] = []
        server = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
                server.requests.append(req)
                route = server.routes.get(self.path.split("?")[0])
                resp = (
                    Response(404, b"not found")
                    if route is None
                    else (route(req) if callable(route) else route)
                )
                self.send_response(resp.status)
                for key, value in resp.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)

            do_GET = do_POST = do_HEAD = _serve

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def http_server() -> Iterator[LoopbackServer]:
    """A loopback HTTP server, stopped after the test."""
    server = LoopbackServer()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- databases: the `store` fixture runs a test against SQLite and PostgreSQL ----------


def _pg_bindir() -> Path:
    """Where initdb/pg_ctl live: on PATH, else the newest Debian-layout install."""
    import glob
    import shutil

    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("PostgreSQL does not answer and no initdb/pg_ctl is installed")
    return Path(candidates[-1]).parent


def _start_postgres() -> tuple[str, Callable[[], None]]:
    """A throwaway PostgreSQL server in a temp dir on a free port; returns its admin URL and a stopper."""
    import shutil
    import subprocess
    import tempfile

    bindir, port = _pg_bindir(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ingest-test-pg-"))  # not under pytest's root-only dirs
    datadir = workdir / "pgdata"
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres")

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr or done.stdout}")

    run(str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(datadir),
        "-o",
        options,
        "-w",
        "-l",
        str(workdir / "server.log"),
        "start",
    )

    def stop() -> None:
        run(str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


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
        admin, stop = _start_postgres()
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


class RawServer:
    """A loopback TCP server whose connection handler writes raw HTTP (streams, drips)."""

    def __init__(self, handler: Callable[[socket.socket], None], host: str = "127.0.0.1") -> None:
        self.sock = socket.create_server((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.handler = handler
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            with contextlib.suppress(OSError):
                self.handler(conn)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def close(self) -> None:
        self.sock.close()
