"""Shared fixtures: real Redis (a db of its own per test run), real SQLite,
and loopback HTTP servers the tests start themselves."""

from __future__ import annotations

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

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _redis_base_url() -> str:
    """The machine's Redis if one answers on loopback, else an embedded server."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return url
    except redis.RedisError:
        from ingest.redis_server import start_embedded

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
                resp = Response(404, b"not found") if route is None else (
                    route(req) if callable(route) else route)
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
