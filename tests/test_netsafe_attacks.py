"""SSRF and bomb attacks on webhook deliveries and feed fetches (extends tests/test_fetch.py).

Every hostile spelling is refused before any connection: a listening loopback socket sees
none, and the sender's resolver (`SafeResolver`, the only way aiohttp learns an address to
connect to) hands out no address that failed the check."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import brotli
import pytest

from ingest.alert.policy import Attempt
from ingest.alert.sender import WebhookSender
from ingest.errors import FetchError
from ingest.fetch import fetch_feed, fetch_feed_async
from ingest.net.clients import (
    SafeResolver,
    _ssl_context,
    make_async_client,
    make_client,
    make_webhook_session,
)
from ingest.settings import Settings
from tests.conftest import LoopbackServer, Response

LOOPBACK_SPELLINGS = ["127.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "localhost"]
UNREACHABLE = [
    "100.64.0.1",
    "169.254.169.254",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::1]",
    "[fd00::1]",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::7f00:1]",
    "[2002:7f00:1::1]",
    "10.0.0.1",
]
# httpx itself rejects the octal spelling 0177.0.0.1 as an invalid URL: refused before connecting too
REFUSED = r"refused: resolves to|Invalid IPv4 address"
# aiohttp refuses non-canonical IPv4 spellings (127.1, 0x7f.1, ...) before connecting too
WEBHOOK_REFUSED = r"refused: resolves to|not a canonical IPv4 address|InvalidURL"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture()
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (address, port) the sender's resolver hands to aiohttp to connect to."""
    resolved: list[tuple[str, int]] = []
    real = SafeResolver.resolve

    async def counting(self: SafeResolver, host: str, port: int = 0, family: int = 0) -> list[Any]:
        results = await real(self, host, port, family)
        resolved.extend((r["host"], r["port"]) for r in results)
        return results

    monkeypatch.setattr(SafeResolver, "resolve", counting)
    return resolved


@pytest.fixture()
def listener() -> Iterator[socket.socket]:
    """A listening socket on 127.0.0.1 that must never see a connection."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def _accepted(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def _deliver(settings: Settings, url: str) -> Attempt:
    """One webhook attempt through the sender, as `ingest send` makes it."""

    async def run() -> Attempt:
        async with make_webhook_session(settings, total=4, per_origin=2) as session:
            return await WebhookSender(session, settings.allowed_networks, 3.0).post(url, b"{}", {})

    return asyncio.run(run())


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_webhook_to_loopback_spelling_refused_before_connecting(
    settings: Settings, host: str, scheme: str, listener: socket.socket, connects: list[tuple[str, int]]
) -> None:
    """A webhook URL spelling loopback any way is refused; the listening socket sees nothing."""
    port = listener.getsockname()[1]
    result = _deliver(settings.replace(allowed_networks=()), f"{scheme}://{host}:{port}/hook")
    assert re.search(WEBHOOK_REFUSED, result.error or ""), result.error
    assert connects == [] and not _accepted(listener)


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("host", UNREACHABLE)
def test_webhook_to_private_metadata_6to4_nat64_refused(
    settings: Settings, host: str, scheme: str, connects: list[tuple[str, int]]
) -> None:
    """Shared, metadata, NAT64, 6to4, ULA and mapped forms are refused with no connection attempted."""
    result = _deliver(settings.replace(allowed_networks=()), f"{scheme}://{host}/hook")
    assert re.search(WEBHOOK_REFUSED, result.error or ""), result.error
    assert connects == []


def test_webhook_other_schemes_refused(settings: Settings, connects: list[tuple[str, int]]) -> None:
    """Only http and https are sent to: a unix socket or file URL is refused, nothing opened."""
    for url in ("http+unix://%2Frun%2Fdocker.sock/hook", "file:///etc/passwd", "ftp://127.0.0.1/x"):
        assert "refused: scheme" in (_deliver(settings, url).error or "")
    assert connects == []


@pytest.mark.parametrize("host", UNREACHABLE + LOOPBACK_SPELLINGS)
def test_feed_fetch_async_refuses_every_form(settings: Settings, host: str) -> None:
    """The poller's async client refuses the same forms (the sync one is covered in test_fetch.py)."""

    async def fetch() -> None:
        async with make_async_client(settings.replace(allowed_networks=())) as client:
            await fetch_feed_async(client, f"http://{host}/feed", max_bytes=1000, timeout=3)

    with pytest.raises(FetchError, match=REFUSED):
        asyncio.run(fetch())


def test_webhook_redirect_is_never_followed(
    settings: Settings, http_server: LoopbackServer, listener: socket.socket, connects: list[tuple[str, int]]
) -> None:
    """A receiver answering 307 to a private address gets a failed attempt; the target sees nothing."""
    target = f"http://127.0.0.2:{listener.getsockname()[1]}/steal"
    http_server.routes["/hook"] = Response(307, b"", {"Location": target})
    only_this_host = (ipaddress.ip_network("127.0.0.1/32"),)
    result = _deliver(settings.replace(allowed_networks=only_this_host), http_server.url("/hook"))
    assert result.status == 307 and "HTTP 307" in (result.error or "")
    assert not _accepted(listener)
    assert [r.path for r in http_server.requests] == ["/hook"]


@pytest.mark.parametrize("target", ["127.0.0.1", "10.0.0.1"])
def test_proxy_variables_never_route_or_bypass(
    settings: Settings,
    http_server: LoopbackServer,
    listener: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
    connects: list[tuple[str, int]],
    target: str,
) -> None:
    """With every proxy variable pointing at a listener, deliveries go direct or are refused; no proxying."""
    proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in PROXY_VARS:
        monkeypatch.setenv(name, proxy)
    monkeypatch.setenv("NO_PROXY", "")
    http_server.routes["/hook"] = Response(204)
    if target == "127.0.0.1":
        assert _deliver(settings, http_server.url("/hook")).ok
        assert len(http_server.requests) == 1
    else:
        result = _deliver(settings.replace(allowed_networks=()), f"http://{target}/hook")
        assert "refused: resolves to" in (result.error or "")
    assert not _accepted(listener)


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_feed_bombs_cut_off_after_decompression(
    settings: Settings, http_server: LoopbackServer, encoding: str
) -> None:
    """gzip and brotli bombs (50 MB of zeros) stop at the body cap, sync and async."""
    zeros = b"\0" * 50_000_000
    bomb = gzip.compress(zeros, compresslevel=9) if encoding == "gzip" else brotli.compress(zeros, quality=9)
    assert len(bomb) < 200_000
    http_server.routes["/bomb"] = Response(200, bomb, {"Content-Encoding": encoding})
    with make_client(settings) as client, pytest.raises(FetchError, match="body larger than 1000000 bytes"):
        fetch_feed(client, http_server.url("/bomb"), max_bytes=1_000_000, timeout=10)

    async def fetch() -> None:
        async with make_async_client(settings) as client:
            await fetch_feed_async(client, http_server.url("/bomb"), max_bytes=1_000_000, timeout=10)

    with pytest.raises(FetchError, match="body larger than 1000000 bytes"):
        asyncio.run(fetch())


def test_webhook_answer_bomb_is_not_decompressed(settings: Settings, http_server: LoopbackServer) -> None:
    """A receiver answering with a gzip bomb: the delivery reads at most 64 KiB raw and succeeds."""
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    http_server.routes["/hook"] = Response(200, bomb, {"Content-Encoding": "gzip"})
    assert _deliver(settings, http_server.url("/hook")).ok


class _TLSProbe:
    """A TCP listener that records the first bytes a client sends (its TLS ClientHello), then hangs up."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.hello = b""
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(5)
            self.hello = conn.recv(65536)
        self.done.set()


def test_webhook_https_connects_to_checked_ip_with_sni_of_the_name(
    settings: Settings, connects: list[tuple[str, int]]
) -> None:
    """https://localhost: the socket goes to a checked IP, the TLS hello names `localhost` (SNI), and
    a failed handshake is a clear delivery error; the shared certifi context keeps verifying hostnames."""
    probe = _TLSProbe()
    result = _deliver(settings, f"https://localhost:{probe.port}/hook")
    assert re.search(r"SSL\w*Error|Connection|Server disconnected", result.error or ""), result.error
    assert probe.done.wait(5)
    assert probe.hello[:1] == b"\x16" and b"localhost" in probe.hello  # a TLS handshake record, with SNI
    assert connects and connects[-1] == ("127.0.0.1", probe.port)
    assert all(host in ("127.0.0.1", "::1") for host, _ in connects)  # never the name itself
    context = _ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    probe.sock.close()
