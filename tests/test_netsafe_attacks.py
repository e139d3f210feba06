"""SSRF and bomb attacks on webhook deliveries and feed fetches (extends tests/test_fetch.py).

Every hostile spelling is refused before any connection: a listening loopback socket sees
none, and the webhook connection's socket opener (SafeHTTPConnection.open_socket, under the
address check) is never called."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator

import brotli
import pytest

from ingest.alert.http_client import SafeHTTPConnection, WebhookClient, make_webhook_client
from ingest.alert.webhook import deliver, new_secret
from ingest.errors import AlertDeliveryError, FetchError, UnsafeURLError
from ingest.fetch import fetch_feed, fetch_feed_async
from ingest.net.clients import _ssl_context, make_async_client, make_client
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
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture()
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address a webhook connection opens a socket to (HTTP and HTTPS share the opener)."""
    opened: list[tuple[str, int]] = []
    real = SafeHTTPConnection.open_socket

    def counting(self: SafeHTTPConnection, address: tuple[str, int]) -> socket.socket:
        opened.append(address)
        return real(self, address)

    monkeypatch.setattr(SafeHTTPConnection, "open_socket", counting)
    return opened


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


def _deliver(client: WebhookClient, url: str) -> None:
    deliver(client, url, "msg_test", b"{}", [new_secret()], timeout=3)


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_webhook_to_loopback_spelling_refused_before_connecting(
    settings: Settings, host: str, scheme: str, listener: socket.socket, connects: list[tuple[str, int]]
) -> None:
    """A webhook URL spelling loopback any way is refused; the listening socket sees nothing."""
    port = listener.getsockname()[1]
    with (
        make_webhook_client(settings.replace(allowed_networks=())) as client,
        pytest.raises(UnsafeURLError, match="refused: resolves to"),
    ):
        _deliver(client, f"{scheme}://{host}:{port}/hook")
    assert connects == [] and not _accepted(listener)


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("host", UNREACHABLE)
def test_webhook_to_private_metadata_6to4_nat64_refused(
    settings: Settings, host: str, scheme: str, connects: list[tuple[str, int]]
) -> None:
    """Shared, metadata, NAT64, 6to4, ULA and mapped forms are refused with no connection attempted."""
    with (
        make_webhook_client(settings.replace(allowed_networks=())) as client,
        pytest.raises(UnsafeURLError, match="refused: resolves to"),
    ):
        _deliver(client, f"{scheme}://{host}/hook")
    assert connects == []


def test_webhook_other_schemes_refused(settings: Settings, connects: list[tuple[str, int]]) -> None:
    """Only http and https are sent to: a unix socket or file URL is refused, nothing opened."""
    with make_webhook_client(settings) as client:
        for url in ("http+unix://%2Frun%2Fdocker.sock/hook", "file:///etc/passwd", "ftp://127.0.0.1/x"):
            with pytest.raises(UnsafeURLError, match="refused: scheme"):
                _deliver(client, url)
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
    with (
        make_webhook_client(settings.replace(allowed_networks=only_this_host)) as client,
        pytest.raises(AlertDeliveryError, match="HTTP 307"),
    ):
        _deliver(client, http_server.url("/hook"))
    assert connects == [("127.0.0.1", http_server.port)] and not _accepted(listener)
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
    with make_webhook_client(settings) as client:
        if target == "127.0.0.1":
            _deliver(client, http_server.url("/hook"))
            assert len(http_server.requests) == 1
            assert connects == [("127.0.0.1", http_server.port)]
        else:
            with pytest.raises(UnsafeURLError, match="refused: resolves to"):
                _deliver(client, f"http://{target}/hook")
            assert connects == []
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
    with make_webhook_client(settings) as client:
        _deliver(client, http_server.url("/hook"))


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
    with (
        make_webhook_client(settings) as client,
        pytest.raises(AlertDeliveryError, match=r"SSL\w*Error|ConnectionResetError"),
    ):
        _deliver(client, f"https://localhost:{probe.port}/hook")
    assert probe.done.wait(5)
    assert probe.hello[:1] == b"\x16" and b"localhost" in probe.hello  # a TLS handshake record, with SNI
    assert connects and connects[-1] == ("127.0.0.1", probe.port)
    assert all(host in ("127.0.0.1", "::1") for host, _ in connects)  # never the name itself
    context = _ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    probe.sock.close()
