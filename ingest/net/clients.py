"""The service's HTTP clients, every connection through the address check of `ingest.net.guard`.

One pool policy for both: no proxies (environment variables are ignored), no redirects
followed by the client, keep-alive per origin, the certifi CA bundle, the service's
User-Agent. The fetcher uses httpx (`make_client`, `make_async_client`); the webhook sender
uses aiohttp (`make_webhook_session`), which costs 0.12-0.16 ms of CPU per loopback POST
where httpx's async client costs about 3 ms (benchmarks/delivery.py).
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiohttp
import anyio.abc
import certifi
import httpcore
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from httpcore._backends.anyio import AnyIOStream
from httpcore._utils import is_socket_readable

from ingest.errors import UnsafeURLError
from ingest.net.guard import Network, checked_addresses, resolve, resolve_async
from ingest.settings import SETTINGS, Settings

KEEPALIVE_SECONDS = 5.0  # an idle connection older than this is closed, not reused
# Origin pools the poller's client keeps (idle ones past this are closed, least recently used
# first). Not the concurrency: a pass over feeds on 1,000 hosts with 100 fetches at a time visits
# every host again within seconds, and a pool closed in between costs a new connection per fetch.
MAX_POOLS = 2048


class SafeBackend(httpcore.NetworkBackend):
    """Resolves, checks, then connects to the checked IP itself (never re-resolving)."""

    def __init__(self, allowed: Sequence[Network], inner: httpcore.NetworkBackend | None = None) -> None:
        self.allowed = tuple(allowed)
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addrs = checked_addresses(host, resolve(host, port), self.allowed)
        error: Exception | None = None
        for addr in addrs:
            try:
                return self.inner.connect_tcp(
                    str(addr),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise UnsafeURLError(path, "refused: unix sockets are not reachable from feeds")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class _Stream(AnyIOStream):
    """httpcore asks every connection of a pool "readable?" (closed by the server?) on each request;
    anyio answers by building its whole attribute table, a getpeername() call included (~5 % of a
    poller's CPU). The raw socket is looked up once instead."""

    _raw: socket.socket | None = None

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            if self._raw is None:
                self._raw = self._stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
            return is_socket_readable(self._raw)
        return super().get_extra_info(info)

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _cheap(await super().start_tls(ssl_context, server_hostname, timeout))


def _cheap(stream: httpcore.AsyncNetworkStream) -> httpcore.AsyncNetworkStream:
    if type(stream) is AnyIOStream:
        stream.__class__ = _Stream  # same object, the cheaper readability check
    return stream


class AsyncSafeBackend(httpcore.AsyncNetworkBackend):
    """The async twin of SafeBackend."""

    def __init__(self, allowed: Sequence[Network], inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allowed = tuple(allowed)
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addrs = checked_addresses(host, await resolve_async(host, port), self.allowed)
        error: Exception | None = None
        for addr in addrs:
            try:
                return _cheap(await self.inner.connect_tcp(
                    str(addr), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                ))  # fmt: skip
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURLError(path, "refused: unix sockets are not reachable from feeds")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One per process: loading the CA bundle costs ~20 ms of CPU, and the poller makes a client per pass."""
    return ssl.create_default_context(cafile=certifi.where())


def _pool_kwargs(limits: httpx.Limits) -> dict[str, Any]:
    return {
        "ssl_context": _ssl_context(),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


def user_agent(settings: Settings) -> str:
    """INGEST_USER_AGENT; its default names INGEST_CONTACT_URL instead of a placeholder when one is set."""
    default = next(s.default for s in SETTINGS if s.field == "user_agent")
    if settings.contact_url and settings.user_agent == default:
        return f"news-ingest/0.1 (feed fetcher; +{settings.contact_url})"
    return settings.user_agent


def client_timeout(settings: Settings) -> httpx.Timeout:
    """Connect and read timeouts, each within the fetch's total budget."""
    total = settings.fetch_timeout
    return httpx.Timeout(
        total, connect=min(settings.connect_timeout, total), read=min(settings.read_timeout, total)
    )


def _client_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "trust_env": False,
        "follow_redirects": False,
        "timeout": client_timeout(settings),
        "headers": {"User-Agent": user_agent(settings)},
    }


def make_client(settings: Settings, *, max_connections: int = 20) -> httpx.Client:
    """A sync client whose every connection passes the address check (redirects included)."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    transport = httpx.HTTPTransport(verify=_ssl_context(), trust_env=False, limits=limits)
    transport._pool = httpcore.ConnectionPool(  # the one way in for a custom network backend
        network_backend=SafeBackend(settings.allowed_networks), **_pool_kwargs(limits)
    )
    return httpx.Client(transport=transport, **_client_kwargs(settings))


def make_async_client(settings: Settings, *, max_connections: int = 100) -> httpx.AsyncClient:
    """The async twin of make_client, for the poller's concurrent fetches: one small pool per origin
    (`OriginPools`), each of at most INGEST_FETCH_PER_HOST connections."""
    per_origin = max(1, min(settings.fetch_per_host, max_connections))

    def pool() -> httpx.AsyncHTTPTransport:
        limits = httpx.Limits(max_connections=per_origin, max_keepalive_connections=per_origin)
        transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), trust_env=False, limits=limits)
        transport._pool = httpcore.AsyncConnectionPool(
            network_backend=AsyncSafeBackend(settings.allowed_networks), **_pool_kwargs(limits)
        )
        return transport

    transport = OriginPools(pool, max_pools=max(max_connections, MAX_POOLS))
    return httpx.AsyncClient(transport=transport, **_client_kwargs(settings))


class OriginPools(httpx.AsyncBaseTransport):
    """One connection pool per origin (scheme, host, port), at most `max_pools` of them kept.

    httpcore checks every connection of a pool on each request and each response (idle? expired?
    readable: two system calls), and counts the pool's connections once per idle one: with one
    pool of up to 100 connections that cost the poller more CPU than parsing the feeds. Per origin
    the checks cover a few connections. Past `max_pools`, the least recently used pools whose
    connections are all idle are closed (their keep-alive sockets with them).
    """

    def __init__(self, make: Callable[[], httpx.AsyncHTTPTransport], *, max_pools: int) -> None:
        self._make = make
        self.max_pools = max_pools
        self._pools: OrderedDict[tuple[bytes, bytes, int | None], httpx.AsyncHTTPTransport] = OrderedDict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.raw_scheme, url.raw_host, url.port)
        transport = self._pools.get(key)
        if transport is None:
            await self._make_room()
            transport = self._pools.get(key)  # another request may have made it meanwhile
            if transport is None:
                transport = self._pools[key] = self._make()
        self._pools.move_to_end(key)
        return await transport.handle_async_request(request)

    async def _make_room(self) -> None:
        """Close idle pools, oldest first, until one more fits (a busy pool is never closed).

        Several requests make room at once (each waits while closing a pool): a pool another one
        closed meanwhile is skipped, not looked up again.
        """
        for key in list(self._pools):
            if len(self._pools) < self.max_pools:
                return
            transport = self._pools.get(key)
            if transport is None:
                continue
            if all(c.is_idle() or c.is_closed() for c in transport._pool.connections):
                del self._pools[key]
                await transport.aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for transport in pools:
            await transport.aclose()


class SafeResolver(AbstractResolver):
    """aiohttp's resolver, through the address check: a name with one unsafe address is refused whole.

    aiohttp skips the resolver for IP literals; `ingest.alert.sender` checks those itself.
    """

    def __init__(self, allowed: Sequence[Network]) -> None:
        self.allowed = tuple(allowed)

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        addrs = checked_addresses(host, await resolve_async(host, port), self.allowed)
        return [ResolveResult(hostname=host, host=str(addr), port=port,
                              family=socket.AF_INET6 if addr.version == 6 else socket.AF_INET,
                              proto=0, flags=socket.AI_NUMERICHOST) for addr in addrs]  # fmt: skip

    async def close(self) -> None:
        return None


def make_webhook_session(settings: Settings, *, total: int, per_origin: int) -> aiohttp.ClientSession:
    """The sender's session: `total` connections in all, `per_origin` per receiver, checked at connect.

    Each new connection resolves again (no DNS cache), so a rebinding answer is refused too.
    Must be made inside the running event loop.
    """
    connector = aiohttp.TCPConnector(
        limit=total, limit_per_host=per_origin, use_dns_cache=False, ssl=_ssl_context(),
        resolver=SafeResolver(settings.allowed_networks), keepalive_timeout=KEEPALIVE_SECONDS,
    )  # fmt: skip
    return aiohttp.ClientSession(
        connector=connector, trust_env=False, auto_decompress=False,
        headers={"User-Agent": user_agent(settings)}, skip_auto_headers=("Accept-Encoding",),
    )  # fmt: skip
