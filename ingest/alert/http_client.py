"""The webhook sender's HTTP client: urllib3 pools whose connections pass the netsafe address check.

Why not the httpx client the feed fetcher uses: a loopback POST costs about half the CPU through
a plain urllib3 pool, and every alert is one POST. What the httpx client guaranteed holds here too:

- every new connection resolves the host with `netsafe.resolve`, checks every address with
  `netsafe.checked_addresses` and connects to a checked IP itself, never re-resolving: a DNS
  answer that changes after the subscription was checked (rebinding) is refused before any
  packet leaves;
- TLS verifies the certificate against the URL's hostname (also sent as SNI) with the certifi
  bundle, although the socket was opened to an IP;
- no proxies (urllib3 pools never read proxy variables), no redirects, no retries;
- at most MAX_RESPONSE_BYTES of an answer are read, raw (never decompressed).
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from urllib3 import BaseHTTPResponse, HTTPConnectionPool, HTTPResponse, HTTPSConnectionPool, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import parse_url

from ingest.errors import AlertDeliveryError
from ingest.net import guard as netsafe
from ingest.settings import Settings

MAX_RESPONSE_BYTES = 64 * 1024  # of a receiver's answer; only its status matters
KEEPALIVE_SECONDS = 5.0  # an idle connection older than this is replaced, not reused (as httpx did)
MAX_HOSTS = 20  # pools kept, least recently used dropped first
PER_HOST = 2  # idle connections kept per receiver; more are opened when threads need them

PoolKey = tuple[str, str, int]


class SafeHTTPConnection(HTTPConnection):
    """A connection that opens its socket only to addresses the netsafe check accepted."""

    _asked_at: float | None = None  # when it last sent a request: idle time is never underestimated

    def __init__(self, *args: Any, allowed: Sequence[netsafe.Network] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed = tuple(allowed)  # empty: nothing non-public, the safe default

    def _new_conn(self) -> socket.socket:
        """Resolve, check every address (refusing the name whole if one is unsafe), connect to one."""
        host, port = self._dns_host, self.port
        addrs = netsafe.checked_addresses(host, netsafe.resolve(host, port), self.allowed)
        error: OSError | None = None
        for addr in addrs:
            try:
                return self.open_socket((str(addr), port))
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"connecting to {host} timed out") from exc
            except OSError as exc:
                error = exc  # refused or unreachable: the next address may answer
        raise NewConnectionError(self, f"cannot connect to {host}: {error}") from error

    def open_socket(self, address: tuple[str, int]) -> socket.socket:
        """A TCP connection to one checked address: the only place a socket is opened (tests count here)."""
        timeout = self.timeout if isinstance(self.timeout, float | int) else None
        sock = socket.create_connection(address, timeout, source_address=self.source_address)
        for option in self.socket_options or ():
            sock.setsockopt(*option)  # TCP_NODELAY: headers and body go out as two writes
        return sock

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3's own
        self._asked_at = time.monotonic()
        return super().getresponse()

    @property
    def is_connected(self) -> bool:
        """The pool reuses a kept connection only if this holds: open, not closed by the peer, fresh."""
        if self._asked_at is not None and time.monotonic() - self._asked_at > KEEPALIVE_SECONDS:
            return False  # a receiver may close an idle connection just as we send on it
        return super().is_connected


class SafeHTTPSConnection(SafeHTTPConnection, HTTPSConnection):
    """TLS over a checked socket: urllib3 wraps it with server_hostname = the URL's host."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = SafeHTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = SafeHTTPSConnection


@dataclass(frozen=True)
class Answer:
    """What a receiver answered: its body was read (at most MAX_RESPONSE_BYTES) and dropped."""

    status: int
    reason: str
    headers: Mapping[str, str]


class WebhookClient:
    """POSTs to webhook receivers through one keep-alive pool per (scheme, host, port).

    Thread-safe like urllib3's own pools: the pool cache is locked, each pool hands a connection to
    one request at a time.
    """

    def __init__(
        self,
        allowed: Sequence[netsafe.Network],
        user_agent: str,
        *,
        max_hosts: int = MAX_HOSTS,
        per_host: int = PER_HOST,
    ) -> None:
        self.allowed = tuple(allowed)
        self.user_agent = user_agent
        self.max_hosts = max_hosts
        self.per_host = per_host
        self._pools: OrderedDict[PoolKey, HTTPConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
        """POST once. The receiver has `timeout` to accept the connection and `timeout` to start its
        answer; the answer is read up to MAX_RESPONSE_BYTES, its end, or `timeout` after the start.

        Raises AlertDeliveryError for an invalid URL, a timeout or a connection error, and
        UnsafeURLError (`refused: ...`) or FetchError (DNS) from the address check.
        """
        started = time.monotonic()
        scheme, host, port, target, auth = _split(url)
        pool = self._pool(scheme, host, port)
        sent = {"User-Agent": self.user_agent, **auth, **headers}
        try:
            response = pool.urlopen(
                "POST",
                target,
                body=body,
                headers=sent,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=Timeout(connect=timeout, read=timeout),
                preload_content=False,
                decode_content=False,
                release_conn=False,
            )
            try:
                _read_answer(response, started + timeout)
            finally:
                if not response.closed:  # an unread rest: drop the connection
                    response.close()
                response.release_conn()
        except NewConnectionError as exc:  # a subclass of urllib3's TimeoutError, but not a timeout
            raise AlertDeliveryError(url, _describe(exc)) from None
        except Urllib3Timeout:
            raise AlertDeliveryError(url, f"timed out after {timeout:g}s") from None
        except HTTPError as exc:
            raise AlertDeliveryError(url, _describe(exc)) from None
        return Answer(response.status, response.reason or "", response.headers)

    def _pool(self, scheme: str, host: str, port: int) -> HTTPConnectionPool:
        key = (scheme, host, port)
        evicted: HTTPConnectionPool | None = None
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._new_pool(scheme, host, port)
            self._pools[key] = pool
            if len(self._pools) > self.max_hosts:
                evicted = self._pools.popitem(last=False)[1]
        if evicted is not None:
            evicted.close()  # a connection still in use is closed when it comes back
        return pool

    def _new_pool(self, scheme: str, host: str, port: int) -> HTTPConnectionPool:
        common: dict[str, Any] = {
            "maxsize": self.per_host,
            "block": False,
            "retries": False,
            "allowed": self.allowed,
        }
        if scheme == "https":
            # the certifi context; urllib3 leaves its hostname check on (no assert_hostname given)
            return _HTTPSPool(
                host, port, cert_reqs="CERT_REQUIRED", ssl_context=netsafe._ssl_context(), **common
            )
        return _HTTPPool(host, port, **common)

    def close(self) -> None:
        """Close every kept connection; the client stays usable (new pools are made on demand)."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.close()

    def __enter__(self) -> WebhookClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_webhook_client(settings: Settings) -> WebhookClient:
    """The client for webhook deliveries: INGEST_ALLOWED_NETWORKS and the service's User-Agent."""
    return WebhookClient(settings.allowed_networks, netsafe.user_agent(settings))


def _split(url: str) -> tuple[str, str, int, str, dict[str, str]]:
    """Scheme, host, port, request target and Authorization (from user:password@) of a webhook URL."""
    try:
        netsafe.check_scheme(url)  # `refused: scheme ...` for anything but http(s), unix sockets included
        parts = parse_url(url)
    except ValueError as exc:  # urllib3's LocationParseError is one
        raise AlertDeliveryError(url, f"invalid URL: {exc}") from None
    if not parts.host:
        raise AlertDeliveryError(url, "invalid URL: no host")
    scheme = (parts.scheme or "http").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    auth: dict[str, str] = {}
    if parts.auth:  # as httpx did: credentials in the URL are sent as Basic auth
        user, _, password = parts.auth.partition(":")
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        auth["Authorization"] = f"Basic {token}"
    return scheme, parts.host.strip("[]"), port, parts.request_uri, auth


def _read_answer(response: BaseHTTPResponse, deadline: float) -> None:
    """Read at most MAX_RESPONSE_BYTES of the answer, raw, until `deadline`; we never need more.

    An answer read to its end leaves the connection reusable; one cut short stays open
    (`response.closed` is false) and the caller drops its connection, so the rest is never received.
    """
    read = 0
    while read < MAX_RESPONSE_BYTES and time.monotonic() < deadline:
        chunk = response.read1(MAX_RESPONSE_BYTES - read, decode_content=False)
        if not chunk:
            return
        read += len(chunk)


def _describe(exc: BaseException) -> str:
    """`Type: message` of the error under urllib3's wrappers: the socket's or TLS's own words."""
    inner = exc
    for _ in range(4):
        nested = next((a for a in reversed(inner.args) if isinstance(a, BaseException)), inner.__cause__)
        if nested is None:
            break
        inner = nested
    return f"{type(inner).__name__}: {inner}"
