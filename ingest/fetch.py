"""Conditional GET of feeds and pages, within a byte cap and a time budget.

The logic lives once, in small helpers (`_Hops` follows redirects, `_Body`
decodes and caps the body, `_finish` turns a response into a result or an
error); `fetch_feed` and `fetch_feed_async` are the two thin I/O loops around
them. Bodies are read raw and decompressed here in bounded steps, so a gzip
bomb is cut off after at most one step past the cap instead of inflating a
whole network chunk at once. Clients must come from `make_client`/
`make_async_client` (re-exported here): their transport refuses non-public
addresses at connect time, on every redirect hop too.
"""

from __future__ import annotations

import ssl
import time
import zlib
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import anyio
import httpx

from ingest.errors import FetchError
from ingest.log import get_logger
from ingest.models import FetchResult
from ingest.net.clients import make_async_client, make_client
from ingest.net.guard import check_scheme
from ingest.net.retry_after import parse_retry_after
from ingest.settings import Settings

try:
    import brotli
except ImportError:  # pragma: no cover - brotli is optional
    brotli = None

__all__ = [
    "fetch_feed",
    "fetch_feed_async",
    "fetch_page",
    "fetch_page_async",
    "make_async_client",
    "make_client",
    "parse_retry_after",
]

log = get_logger(__name__)

MAX_REDIRECTS = 5
_STEP = 64 * 1024  # most decoded bytes produced per decompression step
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})
_DECODE_ERRORS: tuple[type[Exception], ...] = (zlib.error, *((brotli.error,) if brotli else ()))
ACCEPT_ENCODING = "gzip, deflate, br" if brotli else "gzip, deflate"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, "
    "text/xml;q=0.9, application/json;q=0.8, text/html;q=0.5, */*;q=0.1"
)


class _Decoder:
    """Content-Encoding decoder that never produces more than _STEP bytes per step."""

    def __init__(self, url: str, encoding: str) -> None:
        self.url = url
        self.kind = encoding.strip().lower() or "identity"
        if self.kind == "x-gzip":
            self.kind = "gzip"
        if self.kind not in ("identity", "gzip", "deflate") and not (self.kind == "br" and brotli):
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
        self.zlib: Any = zlib.decompressobj(16 + zlib.MAX_WBITS if self.kind == "gzip" else zlib.MAX_WBITS)
        self.brotli: Any = brotli.Decompressor() if self.kind == "br" else None
        self.started = False

    def decode(self, data: bytes) -> Any:
        """Yield decoded pieces of `data`, each at most _STEP bytes (identity passes through)."""
        try:
            if self.kind == "identity":
                yield data
            elif self.kind == "br":
                yield from self._brotli(data)
            else:
                yield from self._zlib(data)
        except _DECODE_ERRORS as exc:
            raise FetchError(self.url, f"corrupt {self.kind} body: {exc}") from None

    def _zlib(self, data: bytes) -> Any:
        if self.kind == "deflate" and not self.started and data:
            self.started = True
            try:  # servers send deflate both zlib-wrapped and raw
                zlib.decompressobj().decompress(data[:2])
            except zlib.error:
                self.zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        out = self.zlib.decompress(data, _STEP)
        yield out
        while self.zlib.unconsumed_tail and not self.zlib.eof:
            yield self.zlib.decompress(self.zlib.unconsumed_tail, _STEP)

    def _brotli(self, data: bytes) -> Any:
        yield self.brotli.process(data, output_buffer_limit=_STEP)
        while not self.brotli.can_accept_more_data() and not self.brotli.is_finished():
            yield self.brotli.process(b"", output_buffer_limit=_STEP)


class _Body:
    """Collects the decoded body; refuses it once past the cap or the deadline."""

    def __init__(self, url: str, response: httpx.Response, max_bytes: int, clock: _Clock) -> None:
        self.url, self.max_bytes, self.clock = url, max_bytes, clock
        self.decoder = _Decoder(url, response.headers.get("content-encoding", ""))
        self.parts: list[bytes] = []
        self.size = 0
        length = response.headers.get("content-length", "")
        if self.decoder.kind == "identity" and length.isdigit() and int(length) > max_bytes:
            raise self._too_large()

    def _too_large(self) -> FetchError:
        return FetchError(self.url, f"body larger than {self.max_bytes} bytes")

    def feed(self, raw: bytes) -> None:
        for piece in self.decoder.decode(raw):
            self.size += len(piece)
            if self.size > self.max_bytes:
                raise self._too_large()
            self.parts.append(piece)
        self.clock.check()

    def content(self) -> bytes:
        return b"".join(self.parts)


class _Clock:
    """The fetch's total time budget (connect, redirects and body together)."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self.deadline = time.monotonic() + timeout

    def error(self) -> FetchError:
        return FetchError(self.url, f"timed out after {self.timeout:g}s")

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.error()
        return left

    def check(self) -> None:
        self.remaining()

    def limits(self, base: httpx.Timeout | None) -> httpx.Timeout:
        """The client's connect/read timeouts, none longer than what is left of the budget."""
        left = self.remaining()
        if base is None:
            return httpx.Timeout(left)
        return httpx.Timeout(
            left,
            connect=min(base.connect or left, left),
            read=min(base.read or left, left),
            write=min(base.write or left, left),
            pool=min(base.pool or left, left),
        )


class _Hops:
    """Manual redirect following: every hop's scheme checked, loops and long chains refused."""

    def __init__(self, url: str) -> None:
        self.requested = url
        self.url = url
        self.seen = {url}
        self.count = 0
        self.permanent: str | None = None
        self.all_permanent = True

    def next_url(self, response: httpx.Response) -> str | None:
        """The URL to fetch next, or None when this response is the final one."""
        if response.status_code not in _REDIRECTS:
            return None
        location = response.headers.get("location")
        if not location:
            raise FetchError(
                self.requested,
                f"HTTP {response.status_code} redirect without Location",
                status=response.status_code,
            )
        target = str(response.url.join(location.strip()))
        self.url = target
        self.count += 1
        if target in self.seen:
            raise FetchError(self.requested, f"too many redirects (loop back to {target})")
        if self.count > MAX_REDIRECTS:
            raise FetchError(self.requested, f"too many redirects (more than {MAX_REDIRECTS})")
        check_scheme(target)
        if self.all_permanent and response.status_code in _PERMANENT:
            self.permanent = target
        else:
            self.all_permanent = False
        self.seen.add(target)
        return target


def _request_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {"Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _raise_for_status(url: str, response: httpx.Response) -> None:
    code = response.status_code
    if code == 304 or 200 <= code < 300:
        return
    try:
        phrase = response.reason_phrase or HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    retry_after = parse_retry_after(response.headers.get("retry-after")) if code in (429, 503) else None
    raise FetchError(
        url, f"HTTP {code} {phrase}".rstrip(), status=code, retry_after=retry_after, permanent=code == 410
    )


def _result(
    hops: _Hops, response: httpx.Response, content: bytes | None, etag: str | None, last_modified: str | None
) -> FetchResult:
    headers = {k.lower(): v for k, v in response.headers.items()}
    not_modified = response.status_code == 304
    log.debug(
        "fetch.done",
        url=hops.requested,
        final_url=hops.url,
        status=response.status_code,
        bytes=len(content or b""),
    )
    return FetchResult(
        url=hops.url,
        status=response.status_code,
        content=content,
        headers=headers,
        etag=headers.get("etag") or (etag if not_modified else None),
        last_modified=headers.get("last-modified") or (last_modified if not_modified else None),
        permanent_redirect=hops.permanent,
    )


def _tls_reason(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return f"TLS error: {getattr(seen, 'reason', None) or seen}"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return f"TLS error: {text}" if "SSL" in text or "CERTIFICATE" in text else None


def _translate(exc: Exception, hops: _Hops, clock: _Clock) -> FetchError:
    """One plain-words FetchError for anything the network or a hop threw."""
    via = f" (redirected to {hops.url})" if hops.url != hops.requested else ""
    if isinstance(exc, FetchError):
        reason = exc.reason + via if exc.url != hops.requested else exc.reason
        return type(exc)(
            hops.requested, reason, status=exc.status, retry_after=exc.retry_after, permanent=exc.permanent
        )
    if isinstance(exc, httpx.ConnectTimeout | httpx.ReadTimeout) and clock.deadline - time.monotonic() > 0.05:
        doing = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for data"
        return FetchError(hops.requested, f"timed out {doing}" + via)  # INGEST_CONNECT/READ_TIMEOUT
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return clock.error()
    if isinstance(exc, httpx.ConnectError):
        return FetchError(hops.requested, (_tls_reason(exc) or f"connection failed: {exc}") + via)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return FetchError(hops.requested, f"invalid URL: {exc}", permanent=True)
    return FetchError(hops.requested, f"connection error: {type(exc).__name__}: {exc}" + via)


_CAUGHT = (httpx.HTTPError, httpx.InvalidURL, FetchError, TimeoutError, ssl.SSLError, OSError)


def fetch_feed(
    client: httpx.Client,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int,
    timeout: float,
) -> FetchResult:
    """GET `url` conditionally; FetchResult on 2xx/304, FetchError (plain words) otherwise."""
    hops, clock = _Hops(url), _Clock(url, timeout)
    headers = _request_headers(etag, last_modified)
    try:
        check_scheme(url)
        while True:
            with client.stream(
                "GET", hops.url, headers=headers, timeout=clock.limits(client.timeout)
            ) as response:
                if hops.next_url(response):
                    continue
                _raise_for_status(url, response)
                if response.status_code == 304:
                    response.read()  # no body by definition; reading it keeps the connection
                    return _result(hops, response, None, etag, last_modified)
                body = _Body(url, response, max_bytes, clock)
                for chunk in response.iter_raw():
                    body.feed(chunk)
                return _result(hops, response, body.content(), etag, last_modified)
    except _CAUGHT as exc:
        raise _translate(exc, hops, clock) from exc


async def fetch_feed_async(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int,
    timeout: float,
) -> FetchResult:
    """The async twin of fetch_feed; the whole fetch is also cancelled at the deadline."""
    hops, clock = _Hops(url), _Clock(url, timeout)
    headers = _request_headers(etag, last_modified)
    try:
        check_scheme(url)
        with anyio.fail_after(timeout):
            while True:
                async with client.stream(
                    "GET", hops.url, headers=headers, timeout=clock.limits(client.timeout)
                ) as response:
                    if hops.next_url(response):
                        continue
                    _raise_for_status(url, response)
                    if response.status_code == 304:
                        await response.aread()  # as in fetch_feed: keeps the connection for the next feed
                        return _result(hops, response, None, etag, last_modified)
                    body = _Body(url, response, max_bytes, clock)
                    async for chunk in response.aiter_raw():
                        body.feed(chunk)
                    return _result(hops, response, body.content(), etag, last_modified)
    except _CAUGHT as exc:
        raise _translate(exc, hops, clock) from exc


def fetch_page(client: httpx.Client, url: str, *, max_bytes: int, timeout: float) -> FetchResult:
    """An article page: same limits and safety as a feed, no conditional headers."""
    return fetch_feed(client, url, max_bytes=max_bytes, timeout=timeout)


async def fetch_page_async(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, timeout: float
) -> FetchResult:
    return await fetch_feed_async(client, url, max_bytes=max_bytes, timeout=timeout)


def page_fetcher(settings: Settings, client: httpx.Client | None = None) -> Callable[[str], FetchResult]:
    """Fetch article pages (full-text feeds) like feeds: address-checked client, body cap, time budget."""
    http = client or make_client(settings)

    def fetch(url: str) -> FetchResult:
        return fetch_page(http, url, max_bytes=settings.max_body_bytes, timeout=settings.fetch_timeout)

    return fetch
