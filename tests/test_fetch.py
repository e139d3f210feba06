"""fetch + netsafe against real loopback servers: conditional GET, limits, redirects, SSRF."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import socket
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator

import brotli
import httpx
import pytest

from ingest.errors import FetchError, UnsafeURLError
from ingest.fetch import (
    fetch_feed,
    fetch_feed_async,
    fetch_page,
    make_async_client,
    make_client,
    parse_retry_after,
)
from ingest.net.guard import check_url
from ingest.settings import Settings
from tests.conftest import LoopbackServer, RawServer, RecordedRequest, Response

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
ONLY_127_0_0_1 = (ipaddress.ip_network("127.0.0.1/32"),)


def get(settings: Settings, url: str, **kwargs: object) -> object:
    with make_client(settings) as client:
        options: dict = {"max_bytes": 1_000_000, "timeout": 5.0, **kwargs}
        return fetch_feed(client, url, **options)


def fetch_error(settings: Settings, url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        get(settings, url, **kwargs)
    return info.value


@pytest.fixture()
def raw_server() -> Iterator[Callable[..., RawServer]]:
    """Factory of RawServers, all closed after the test."""
    servers: list[RawServer] = []

    def start(handler: Callable[[socket.socket], None], host: str = "127.0.0.1") -> RawServer:
        servers.append(RawServer(handler, host))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_200_returns_body_validators_and_sends_user_agent(
    settings: Settings, http_server: LoopbackServer
) -> None:
    """A 200 carries the body, ETag and Last-Modified; the request names us in User-Agent."""
    http_server.routes["/feed"] = Response(
        200, RSS, {"ETag": '"v1"', "Last-Modified": LAST_MODIFIED, "Content-Type": "application/rss+xml"}
    )
    result = get(settings, http_server.url("/feed"))
    assert (result.status, result.content, result.etag) == (200, RSS, '"v1"')
    assert result.last_modified == LAST_MODIFIED
    assert result.headers["content-type"] == "application/rss+xml"
    assert result.permanent_redirect is None
    assert http_server.requests[0].headers["User-Agent"] == settings.user_agent


def test_304_sends_conditional_headers(settings: Settings, http_server: LoopbackServer) -> None:
    """With stored validators the server sees If-None-Match/If-Modified-Since and a 304 has no content."""

    def handler(req: RecordedRequest) -> Response:
        return Response(304) if req.headers.get("If-None-Match") == '"v1"' else Response(200, RSS)

    http_server.routes["/feed"] = handler
    result = get(settings, http_server.url("/feed"), etag='"v1"', last_modified=LAST_MODIFIED)
    assert result.status == 304 and result.not_modified and result.content is None
    assert result.etag == '"v1"'
    seen = http_server.requests[0].headers
    assert seen["If-None-Match"] == '"v1"'
    assert seen["If-Modified-Since"] == LAST_MODIFIED


def test_404_is_reported_in_plain_words(settings: Settings, http_server: LoopbackServer) -> None:
    """A missing feed raises 'HTTP 404 Not Found' with the status, not permanent."""
    error = fetch_error(settings, http_server.url("/missing"))
    assert error.reason == "HTTP 404 Not Found" and error.status == 404 and not error.permanent


def test_410_is_permanent(settings: Settings, http_server: LoopbackServer) -> None:
    """410 Gone marks the error permanent so the poller stops polling."""
    http_server.routes["/gone"] = Response(410, b"gone")
    error = fetch_error(settings, http_server.url("/gone"))
    assert error.status == 410 and error.permanent and error.reason == "HTTP 410 Gone"


def test_429_retry_after_seconds(settings: Settings, http_server: LoopbackServer) -> None:
    """Retry-After in seconds on 429 is passed on."""
    http_server.routes["/busy"] = Response(429, b"slow down", {"Retry-After": "120"})
    error = fetch_error(settings, http_server.url("/busy"))
    assert (error.status, error.retry_after) == (429, 120.0)


def test_503_retry_after_http_date(settings: Settings, http_server: LoopbackServer) -> None:
    """Retry-After as an HTTP-date on 503 becomes seconds from now."""
    http_server.routes["/down"] = Response(503, b"", {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
    error = fetch_error(settings, http_server.url("/down"))
    assert error.status == 503 and error.retry_after is not None and error.retry_after > 86400 * 365


def test_parse_retry_after_past_date_and_garbage() -> None:
    """A date in the past means no wait; garbage means no hint."""
    assert parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_slow_response_times_out(settings: Settings, http_server: LoopbackServer) -> None:
    """A server that does not answer within the budget gives 'timed out after 0.5s'."""

    def slow(req: RecordedRequest) -> Response:
        time.sleep(2)
        return Response(200, RSS)

    http_server.routes["/slow"] = slow
    error = fetch_error(settings, http_server.url("/slow"), timeout=0.5)
    assert error.reason == "timed out after 0.5s"


def _drip(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<rss>")
    for _ in range(100):
        time.sleep(0.1)
        conn.sendall(b" ")


def test_slow_drip_body_hits_total_budget(settings: Settings, raw_server: Callable[..., RawServer]) -> None:
    """A body trickling a byte at a time never trips the read timeout but hits the total budget."""
    server = raw_server(_drip)
    assert fetch_error(settings, server.url(), timeout=1.0).reason == "timed out after 1s"


def _endless(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 16384
    while True:
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def test_endless_body_is_cut_off(settings: Settings, raw_server: Callable[..., RawServer]) -> None:
    """An endless chunked body is refused once past the byte cap."""
    server = raw_server(_endless)
    error = fetch_error(settings, server.url(), max_bytes=200_000)
    assert error.reason == "body larger than 200000 bytes"


def test_oversized_content_length_refused(settings: Settings, http_server: LoopbackServer) -> None:
    """A declared length above the cap is refused."""
    http_server.routes["/big"] = Response(200, b"a" * 5000)
    error = fetch_error(settings, http_server.url("/big"), max_bytes=4999)
    assert error.reason == "body larger than 4999 bytes"


def test_gzip_bomb_cut_off_after_decompression(settings: Settings, http_server: LoopbackServer) -> None:
    """A small gzip body that inflates past the cap is refused (decoded bytes are counted)."""
    bomb = gzip.compress(b"\0" * 50_000_000, compresslevel=9)
    assert len(bomb) < 100_000
    http_server.routes["/bomb"] = Response(200, bomb, {"Content-Encoding": "gzip"})
    error = fetch_error(settings, http_server.url("/bomb"), max_bytes=1_000_000)
    assert error.reason == "body larger than 1000000 bytes"


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate"])
def test_compressed_bodies_are_decoded(
    settings: Settings, http_server: LoopbackServer, encoding: str
) -> None:
    """gzip, brotli and deflate bodies come back decoded, and we advertise them."""
    body = RSS * 50
    packed = {"gzip": gzip.compress, "br": brotli.compress, "deflate": zlib.compress}[encoding](body)
    http_server.routes["/z"] = Response(200, packed, {"Content-Encoding": encoding})
    assert get(settings, http_server.url("/z")).content == body
    assert encoding in http_server.requests[0].headers["Accept-Encoding"]


def test_redirect_chain_followed_and_permanent_move_recorded(
    settings: Settings, http_server: LoopbackServer
) -> None:
    """301 then 302 then 200: final URL is the last hop, the permanent move points at the 301 target."""
    http_server.routes["/a"] = Response(301, b"", {"Location": "/b"})
    http_server.routes["/b"] = Response(302, b"", {"Location": http_server.url("/c")})
    http_server.routes["/c"] = Response(200, RSS)
    result = get(settings, http_server.url("/a"), etag='"e"')
    assert result.url == http_server.url("/c") and result.content == RSS
    assert result.permanent_redirect == http_server.url("/b")
    assert [r.path for r in http_server.requests] == ["/a", "/b", "/c"]
    assert http_server.requests[-1].headers["If-None-Match"] == '"e"'


def test_redirect_loop_refused(settings: Settings, http_server: LoopbackServer) -> None:
    """A redirect loop is refused as too many redirects without looping on."""
    http_server.routes["/x"] = Response(302, b"", {"Location": "/y"})
    http_server.routes["/y"] = Response(302, b"", {"Location": "/x"})
    error = fetch_error(settings, http_server.url("/x"))
    assert error.reason.startswith("too many redirects") and len(http_server.requests) == 2


def test_more_than_five_redirects_refused(settings: Settings, http_server: LoopbackServer) -> None:
    """Six hops are one too many; five are fine."""
    for i in range(7):
        http_server.routes[f"/{i}"] = Response(307, b"", {"Location": f"/{i + 1}"})
    http_server.routes["/5"] = Response(200, RSS)
    assert get(settings, http_server.url("/0")).url == http_server.url("/5")
    http_server.routes["/5"] = Response(307, b"", {"Location": "/6"})
    http_server.routes["/6"] = Response(200, RSS)
    assert fetch_error(settings, http_server.url("/0")).reason == "too many redirects (more than 5)"


def test_redirect_to_other_loopback_refused_before_connecting(
    settings: Settings, http_server: LoopbackServer, raw_server: Callable[..., RawServer]
) -> None:
    """Only 127.0.0.1/32 allowed: a redirect to 127.0.0.2 is refused and never connected to."""
    target = raw_server(
        lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), host="127.0.0.2"
    )
    http_server.routes["/r"] = Response(302, b"", {"Location": target.url("/secret")})
    strict = settings.replace(allowed_networks=ONLY_127_0_0_1)
    with pytest.raises(UnsafeURLError) as info:
        get(strict, http_server.url("/r"))
    assert "refused: resolves to loopback address 127.0.0.2" in info.value.reason
    assert info.value.url == http_server.url("/r")
    assert target.accepted == 0


def test_transport_checks_connections_even_without_fetch_feed(
    settings: Settings, http_server: LoopbackServer
) -> None:
    """The client itself refuses a loopback connection, by literal IP and by host name."""
    http_server.routes["/"] = Response(200, RSS)
    strict = settings.replace(allowed_networks=())
    with make_client(strict) as client:
        for url in (http_server.url("/"), f"http://localhost:{http_server.port}/"):
            with pytest.raises(UnsafeURLError, match="loopback"):
                client.get(url)
    assert http_server.requests == []


@pytest.mark.parametrize(
    "host",
    [
        "127.1",
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "[::ffff:127.0.0.1]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:a9fe:a9fe::1]",
        "[fd00::1]",
        "[::1]",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "224.0.0.1",
        "240.0.0.1",
        "[fe80::1]",
        "[::]",
        "localhost",
    ],
)
def test_non_public_spellings_refused(host: str) -> None:
    """Every spelling of a loopback, private, link-local, shared or metadata address is refused."""
    with pytest.raises(UnsafeURLError, match="refused: resolves to"):
        check_url(f"http://{host}/feed", ())


@pytest.mark.parametrize("host", ["8.8.8.8", "[2606:4700:4700::1111]", "[64:ff9b::808:808]"])
def test_public_literals_pass(host: str) -> None:
    """Public addresses (including a NAT64-synthesised one) are accepted."""
    check_url(f"https://{host}/feed", ())


def test_allowed_network_lets_loopback_through() -> None:
    """An allowed CIDR overrides the refusal, also for its IPv4-mapped spelling."""
    check_url("http://[::ffff:127.0.0.1]:8080/", ONLY_127_0_0_1)
    with pytest.raises(UnsafeURLError):
        check_url("http://127.0.0.2/", ONLY_127_0_0_1)


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "file:///etc/passwd", "gopher://x/", "feed.xml"])
def test_wrong_scheme_refused(settings: Settings, url: str) -> None:
    """Only http and https are fetched."""
    error = fetch_error(settings, url)
    assert isinstance(error, UnsafeURLError) and "is not http or https" in error.reason


def test_redirect_to_file_scheme_refused(settings: Settings, http_server: LoopbackServer) -> None:
    """A redirect to a file: URL is refused."""
    http_server.routes["/f"] = Response(302, b"", {"Location": "file:///etc/passwd"})
    assert isinstance(fetch_error(settings, http_server.url("/f")), UnsafeURLError)


def test_dns_failure_named(settings: Settings) -> None:
    """A host that does not resolve gives 'DNS lookup failed for host X'."""
    error = fetch_error(settings, "http://no-such-host.invalid/feed")
    assert error.reason == "DNS lookup failed for host no-such-host.invalid"
    assert error.url == "http://no-such-host.invalid/feed"


def test_tls_error_named(settings: Settings, http_server: LoopbackServer) -> None:
    """https to a plain-HTTP server is reported as a TLS error."""
    error = fetch_error(settings, http_server.url("/").replace("http://", "https://"))
    assert error.reason.startswith("TLS error: ")


def test_proxy_environment_ignored(
    settings: Settings, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxy variables cannot route fetches elsewhere: the request reaches the server directly."""
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.255.255.1:3128")
    http_server.routes["/p"] = Response(200, RSS)
    assert get(settings, http_server.url("/p")).content == RSS


def test_fetch_page_reuses_limits(settings: Settings, http_server: LoopbackServer) -> None:
    """fetch_page applies the same body cap as feeds."""
    http_server.routes["/page"] = Response(200, b"<html>" + b"a" * 2000)
    with make_client(settings) as client, pytest.raises(FetchError, match="body larger than 100 bytes"):
        fetch_page(client, http_server.url("/page"), max_bytes=100, timeout=5)


async def _fetch_async(settings: Settings, url: str, **kwargs: object) -> object:
    async with make_async_client(settings) as client:
        options: dict = {"max_bytes": 1_000_000, "timeout": 5.0, **kwargs}
        return await fetch_feed_async(client, url, **options)


def test_async_fetch_same_contract(settings: Settings, http_server: LoopbackServer) -> None:
    """The async twin does conditional GET, redirects and error mapping the same way."""

    def handler(req: RecordedRequest) -> Response:
        return (
            Response(304)
            if req.headers.get("If-None-Match") == '"v2"'
            else Response(200, RSS, {"ETag": '"v2"'})
        )

    http_server.routes["/feed"] = handler
    http_server.routes["/old"] = Response(308, b"", {"Location": "/feed"})
    first = asyncio.run(_fetch_async(settings, http_server.url("/old")))
    assert (first.status, first.etag, first.permanent_redirect) == (200, '"v2"', http_server.url("/feed"))
    second = asyncio.run(_fetch_async(settings, http_server.url("/feed"), etag=first.etag))
    assert second.status == 304 and second.content is None
    with pytest.raises(FetchError, match="HTTP 404 Not Found"):
        asyncio.run(_fetch_async(settings, http_server.url("/nope")))


def test_async_refuses_private_redirect_and_bombs(settings: Settings, http_server: LoopbackServer) -> None:
    """Async fetches refuse a redirect to a non-allowed loopback address and cut off a gzip bomb."""
    http_server.routes["/r"] = Response(302, b"", {"Location": "http://127.0.0.3:9/"})
    with pytest.raises(UnsafeURLError, match=r"127\.0\.0\.3"):
        asyncio.run(_fetch_async(settings.replace(allowed_networks=ONLY_127_0_0_1), http_server.url("/r")))
    bomb = gzip.compress(b"\0" * 20_000_000)
    http_server.routes["/bomb"] = Response(200, bomb, {"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="body larger than 500000 bytes"):
        asyncio.run(_fetch_async(settings, http_server.url("/bomb"), max_bytes=500_000))


def test_async_timeout(settings: Settings, raw_server: Callable[..., RawServer]) -> None:
    """The async fetch is cancelled at its total budget."""
    server = raw_server(_drip)
    with pytest.raises(FetchError, match=r"^fetch: .*: timed out after 0.8s$"):
        asyncio.run(_fetch_async(settings, server.url(), timeout=0.8))


def _stall_after_headers(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100\r\n\r\n<rss>")
    threading.Event().wait(5)


def test_read_timeout_is_separate_from_the_budget(
    settings: Settings, raw_server: Callable[..., RawServer]
) -> None:
    """A server going silent mid-body trips INGEST_READ_TIMEOUT long before the total budget."""
    server = raw_server(_stall_after_headers)
    quick = settings.replace(read_timeout=0.3, fetch_timeout=30.0)
    assert fetch_error(quick, server.url(), timeout=30.0).reason == "timed out waiting for data"


def test_user_agent_names_the_contact_url(settings: Settings, http_server: LoopbackServer) -> None:
    """INGEST_CONTACT_URL goes into the default User-Agent; an explicit INGEST_USER_AGENT wins."""
    http_server.routes["/feed"] = Response(200, RSS)
    get(settings.replace(contact_url="https://ops.example/contact"), http_server.url("/feed"))
    get(
        settings.replace(contact_url="https://ops.example/contact", user_agent="mine/1.0"),
        http_server.url("/feed"),
    )
    agents = [r.headers["User-Agent"] for r in http_server.requests]
    assert agents == ["news-ingest/0.1 (feed fetcher; +https://ops.example/contact)", "mine/1.0"]


def test_async_client_keeps_one_small_pool_per_origin(settings: Settings) -> None:
    """Each origin gets its own keep-alive pool of at most INGEST_FETCH_PER_HOST connections; past
    `max_pools` the least recently used idle pool is closed, a busy one never."""
    servers = [LoopbackServer() for _ in range(3)]
    for server in servers:
        server.routes["/f"] = Response(200, b"x" * 100)
    urls = [server.url("/f") for server in servers]

    def pool_keys(client: httpx.AsyncClient) -> list[int | None]:
        return [port for _, _, port in client._transport._pools]  # type: ignore[attr-defined]

    async def run() -> None:
        async with make_async_client(settings) as client:
            for _ in range(3):
                assert (await client.get(urls[0])).status_code == 200
            await client.get(urls[1])
            assert pool_keys(client) == [servers[0].port, servers[1].port]
            pools = client._transport  # type: ignore[attr-defined]
            [connection] = pools._pools[(b"http", b"127.0.0.1", servers[0].port)]._pool.connections
            assert connection.is_idle()  # one connection, reused three times
            pools.max_pools = 1
            async with client.stream("GET", urls[0]) as busy:  # its pool is in use: kept
                await client.get(urls[2])
                assert pool_keys(client) == [servers[0].port, servers[2].port]
                assert await busy.aread() == b"x" * 100
            await client.get(urls[1])  # now the oldest pool is idle: closed to make room
            assert pool_keys(client) == [servers[1].port]

    try:
        asyncio.run(run())
    finally:
        for server in servers:
            server.close()


def test_pooled_connections_answer_readable_from_their_own_socket(
    settings: Settings, http_server: LoopbackServer
) -> None:
    """The poller's streams look the raw socket up once for httpcore's "closed by the server?" check:
    an idle kept-alive connection is not readable (reused), one the server closed is (dropped)."""
    from ingest.net.clients import _Stream

    http_server.routes["/f"] = Response(200, b"x")
    url = http_server.url("/f")

    async def run() -> None:
        async with make_async_client(settings) as client:
            assert (await client.get(url)).status_code == 200
            pools = client._transport._pools  # type: ignore[attr-defined]
            [connection] = pools[(b"http", b"127.0.0.1", http_server.port)]._pool.connections
            stream = connection._connection._network_stream
            assert isinstance(stream, _Stream)
            assert stream.get_extra_info("is_readable") is False
            assert (await client.get(url)).status_code == 200  # the same connection, reused
            [again] = pools[(b"http", b"127.0.0.1", http_server.port)]._pool.connections
            assert again is connection
            stream._raw.shutdown(socket.SHUT_RD)  # as if the server had closed it: EOF is readable
            assert stream.get_extra_info("is_readable") is True

    asyncio.run(run())


def test_origin_pools_make_room_for_many_origins_at_once() -> None:
    """More origins than `max_pools`, requested concurrently: several requests make room at the same
    time, each waiting while it closes a pool; none looks up a pool another one already closed."""
    from types import SimpleNamespace

    from ingest.net.clients import OriginPools

    class Idle:  # a pool whose connections are all idle; closing it takes a turn of the loop
        _pool = SimpleNamespace(connections=[])

        async def aclose(self) -> None:
            await asyncio.sleep(0)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await asyncio.sleep(0)
            return httpx.Response(200)

    async def run() -> list[int]:
        pools = OriginPools(Idle, max_pools=2)  # type: ignore[arg-type]
        requests = [httpx.Request("GET", f"http://h{n}.example/f") for n in range(40)]
        answers = await asyncio.gather(*(pools.handle_async_request(r) for r in requests))
        return [a.status_code for a in answers]

    assert asyncio.run(run()) == [200] * 40


def test_async_fetches_import_nothing_once_warm(
    settings: Settings, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpcore imports `sniffio` for every async lock it sets up; if the module were missing, each
    import would search sys.path again (~0.4 ms, several times per fetch): it must be installed."""
    http_server.routes["/feed"] = Response(200, RSS, {"ETag": '"v1"'})
    asyncio.run(_fetch_async(settings, http_server.url("/feed")))  # lazy imports happen here
    searched: list[str] = []

    class Recorder:
        @staticmethod
        def find_spec(name: str, *args: object) -> None:
            searched.append(name)

    monkeypatch.setattr(sys, "meta_path", [Recorder(), *sys.meta_path])
    result = asyncio.run(_fetch_async(settings, http_server.url("/feed")))
    assert result.status == 200 and searched == []


def test_not_modified_answers_keep_the_connection(
    settings: Settings, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 304 has no body; reading it to its end leaves the keep-alive connection to the next poll
    (closing it unread would cost every unchanged feed a new TCP and TLS handshake)."""
    from ingest.net import clients

    http_server.routes["/feed"] = lambda req: (
        Response(304) if req.headers.get("If-None-Match") == '"v1"' else Response(200, RSS, {"ETag": '"v1"'})
    )
    connects: list[str] = []
    connect = clients.AsyncSafeBackend.connect_tcp

    async def counted(self: clients.AsyncSafeBackend, host: str, port: int, **kwargs: object) -> object:
        connects.append(host)
        return await connect(self, host, port, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(clients.AsyncSafeBackend, "connect_tcp", counted)

    async def run() -> list[int]:
        async with make_async_client(settings) as client:
            first = await fetch_feed_async(client, http_server.url("/feed"), max_bytes=10**6, timeout=5)
            again = [
                await fetch_feed_async(
                    client, http_server.url("/feed"), etag=first.etag, max_bytes=10**6, timeout=5
                )
                for _ in range(3)
            ]
            return [first.status, *(r.status for r in again)]

    assert asyncio.run(run()) == [200, 304, 304, 304]
    assert len(connects) == 1


def test_sync_not_modified_answers_keep_the_connection(
    settings: Settings, http_server: LoopbackServer
) -> None:
    """fetch_feed does the same with the sync client: one connection for a 200 and two 304s."""
    http_server.routes["/feed"] = lambda req: (
        Response(304) if req.headers.get("If-None-Match") == '"v1"' else Response(200, RSS, {"ETag": '"v1"'})
    )
    with make_client(settings) as client:
        first = fetch_feed(client, http_server.url("/feed"), max_bytes=10**6, timeout=5)
        for _ in range(2):
            assert (
                fetch_feed(
                    client, http_server.url("/feed"), etag=first.etag, max_bytes=10**6, timeout=5
                ).status
                == 304
            )
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1 and pool.connections[0].is_idle()
