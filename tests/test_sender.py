"""One webhook attempt against receivers that misbehave: every attempt ends within its deadline."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from ingest.alert.sender import Attempt, WebhookSender
from ingest.net.clients import make_webhook_session
from ingest.settings import Settings
from tests.conftest import LoopbackServer, RawServer, Response

TIMEOUT = 1.0
ENDLESS = 512 * 1024 * 1024  # bytes: more than any socket buffer holds


def attempt(settings: Settings, url: str, *, allowed: bool = True, timeout: float = TIMEOUT) -> Attempt:
    """One POST through a fresh session, as the sender makes it."""
    if not allowed:
        settings = settings.replace(allowed_networks=())

    async def run() -> Attempt:
        async with make_webhook_session(settings, total=8, per_origin=2) as session:
            sender = WebhookSender(session, settings.allowed_networks, timeout)
            return await sender.post(url, b'{"x":1}', {"content-type": "application/json"})

    return asyncio.run(run())


def raw(handler: Callable[[socket.socket], None]) -> RawServer:
    return RawServer(handler)


class TestAnswers:
    """What the receiver's status becomes."""

    def test_2xx_is_success_and_the_body_and_headers_arrive(
        self, settings: Settings, http_server: LoopbackServer
    ) -> None:
        """A 204 is a delivery; the receiver got the body and our User-Agent."""
        http_server.routes["/hook"] = Response(204)
        result = attempt(settings, http_server.url("/hook"))
        assert result.ok and result.status == 204
        assert http_server.requests[0].body == b'{"x":1}'
        assert http_server.requests[0].headers["User-Agent"].startswith("news-ingest")

    @pytest.mark.parametrize("status", [301, 302, 400, 404, 500, 503])
    def test_other_statuses_fail_and_redirects_are_not_followed(
        self, settings: Settings, http_server: LoopbackServer, status: int
    ) -> None:
        """Anything but 2xx fails with the status in words; a redirect's target is never asked."""
        http_server.routes["/hook"] = Response(status, headers={"Location": http_server.url("/elsewhere")})
        result = attempt(settings, http_server.url("/hook"))
        assert not result.ok and result.status == status
        assert result.error is not None and result.error.startswith(f"HTTP {status}")
        assert [r.path for r in http_server.requests] == ["/hook"]

    def test_retry_after_is_read_from_a_429(self, settings: Settings, http_server: LoopbackServer) -> None:
        """429 with Retry-After: the hint comes back for the retry schedule."""
        http_server.routes["/hook"] = Response(429, headers={"Retry-After": "120"})
        result = attempt(settings, http_server.url("/hook"))
        assert result.status == 429 and result.retry_after == 120.0

    def test_410_is_gone(self, settings: Settings, http_server: LoopbackServer) -> None:
        """410 Gone is told apart: it disables the subscription."""
        http_server.routes["/hook"] = Response(410)
        assert attempt(settings, http_server.url("/hook")).gone

    def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_in_errors(
        self, settings: Settings, http_server: LoopbackServer
    ) -> None:
        """user:password@ becomes an Authorization header; the error text does not carry them."""
        http_server.routes["/hook"] = Response(500)
        url = http_server.url("/hook?token=s3cr3t").replace("http://", "http://user:pa55@")
        result = attempt(settings, url)
        assert http_server.requests[0].headers["Authorization"] == "Basic dXNlcjpwYTU1"
        assert "pa55" not in (result.error or "") and "s3cr3t" not in (result.error or "")


def _drip(conn: socket.socket, head: bytes, body: bytes | None = None) -> None:
    for chunk in (head, body or b""):
        for byte in chunk:
            conn.sendall(bytes([byte]))
            time.sleep(0.3)


class TestHostileReceivers:
    """However the receiver behaves, the attempt ends within the deadline (plus scheduling slack)."""

    def _assert_cut_at_deadline(self, result: Attempt, started: float) -> None:
        assert not result.ok
        assert result.error is not None and "timed out" in result.error
        assert time.monotonic() - started < TIMEOUT + 1.0

    def test_dribbled_headers(self, settings: Settings) -> None:
        """One byte every 0.3 s of a status line that never ends."""
        server = raw(lambda c: _drip(c, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100))
        started = time.monotonic()
        self._assert_cut_at_deadline(attempt(settings, server.url("/hook")), started)

    def test_dribbled_body(self, settings: Settings) -> None:
        """Headers at once, then a body one byte every 0.3 s."""
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"

        def handler(conn: socket.socket) -> None:
            conn.sendall(head)
            _drip(conn, b"", b"x" * 1000)

        started = time.monotonic()
        self._assert_cut_at_deadline(attempt(settings, raw(handler).url("/hook")), started)

    def test_silent_receiver(self, settings: Settings) -> None:
        """Accepts the connection and never answers."""
        started = time.monotonic()
        self._assert_cut_at_deadline(attempt(settings, raw(lambda c: time.sleep(30)).url()), started)

    def test_endless_body_is_read_at_most_64_kib(self, settings: Settings) -> None:
        """A 2xx with a body that never ends: the status counts, at most MAX_RESPONSE_BYTES are read."""
        sent: list[int] = []

        def handler(conn: socket.socket) -> None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            total = 0
            try:
                while total < ENDLESS:
                    conn.sendall(b"y" * 8192)
                    total += 8192
            finally:
                sent.append(total)

        started = time.monotonic()
        result = attempt(settings, raw(handler).url())
        assert result.ok and result.status == 200
        assert time.monotonic() - started < TIMEOUT
        time.sleep(0.2)
        assert sent and sent[0] < ENDLESS  # the connection was dropped, not drained

    def test_connection_reset(self, settings: Settings) -> None:
        """The receiver resets the connection: a failure naming the socket's error."""

        def handler(conn: socket.socket) -> None:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

        result = attempt(settings, raw(handler).url())
        assert not result.ok and result.status is None and result.error


class TestAddressCheck:
    """Without an allowance, loopback and private receivers are refused before any packet leaves."""

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "[::1]"])
    def test_loopback_refused(self, settings: Settings, host: str) -> None:
        """IP literals (checked by the sender) and names (checked by the resolver) alike."""
        server = LoopbackServer()
        try:
            url = f"http://{host}:{server.port}/hook"
            result = attempt(settings, url, allowed=False)
            assert not result.ok and result.error is not None
            assert "refused" in result.error or "not a canonical" in result.error
            assert server.requests == []
        finally:
            server.close()

    def test_non_http_scheme_refused(self, settings: Settings) -> None:
        """file:, unix sockets and the like are never webhook targets."""
        result = attempt(settings, "file:///etc/passwd")
        assert not result.ok and "scheme" in (result.error or "")


def test_attempt_fields_are_plain_data() -> None:
    """An Attempt is a frozen value: what the delivery service records from."""
    result: Any = Attempt(500, "HTTP 500", 0.1, 5.0)
    with pytest.raises(AttributeError):
        result.status = 200
