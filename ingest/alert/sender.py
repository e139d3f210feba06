"""One webhook attempt over HTTP, bounded whatever the receiver does.

A hard wall-clock deadline covers connect, request, headers and body together (a receiver
that dribbles its headers, never answers, or streams an endless body is cut off at
INGEST_WEBHOOK_TIMEOUT); at most MAX_RESPONSE_BYTES of an answer are read; no redirects, no
proxies, no retries (the delivery service decides those). Every connection passes the
address check: names through the session's resolver (`ingest.net.clients`), IP literals here.
Error texts never carry the URL: it may hold credentials.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import aiohttp

from ingest.alert.policy import Attempt
from ingest.errors import FetchError
from ingest.net.guard import Network, check_address, check_scheme, parse_ip
from ingest.net.retry_after import parse_retry_after

MAX_RESPONSE_BYTES = 64 * 1024
MAX_CHECKED = 10_000  # URLs remembered as passing the literal check (the same few receive most alerts)


class WebhookSender:
    """POSTs signed bodies; one instance per event loop (it owns an aiohttp session)."""

    def __init__(self, session: aiohttp.ClientSession, allowed: tuple[Network, ...], timeout: float) -> None:
        self.session = session
        self.allowed = allowed
        self.timeout = timeout
        self._checked: set[str] = set()  # URLs whose scheme and literal host passed (names: at connect)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        """One attempt, at most `timeout` seconds of wall-clock time whatever happens."""
        started = time.monotonic()
        try:
            if url not in self._checked:
                _check_literal(url, self.allowed)
                if len(self._checked) >= MAX_CHECKED:
                    self._checked.clear()
                self._checked.add(url)
            async with asyncio.timeout(self.timeout):
                status, reason, retry_after = await self._exchange(url, body, headers)
        except TimeoutError:
            error = f"timed out after {self.timeout:g}s (connect, request and answer together)"
            return Attempt(None, error, time.monotonic() - started)
        except FetchError as exc:  # the address check (refused: ...) or DNS
            return Attempt(None, exc.reason, time.monotonic() - started)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return Attempt(None, _describe(exc), time.monotonic() - started)
        seconds = time.monotonic() - started
        if 200 <= status < 300:
            return Attempt(status, None, seconds)
        return Attempt(status, f"HTTP {status} {reason}".strip(), seconds, retry_after)

    async def _exchange(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, float | None]:
        async with self.session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            read = 0
            while read < MAX_RESPONSE_BYTES:
                chunk = await response.content.read(MAX_RESPONSE_BYTES - read)
                if not chunk:
                    break
                read += len(chunk)
            else:
                response.close()  # an unread rest: drop the connection rather than drain it
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            return response.status, response.reason or "", retry_after


def _check_literal(url: str, allowed: tuple[Network, ...]) -> None:
    """The scheme, and an IP-literal host (aiohttp connects to those without asking the resolver)."""
    check_scheme(url)
    host = urlsplit(url).hostname or ""
    literal = parse_ip(host)
    if literal is not None:
        check_address(host, literal, allowed)


def _describe(exc: BaseException) -> str:
    """`Type: message` of the innermost cause: the socket's or TLS's own words, without the URL."""
    inner: BaseException = exc
    while inner.__cause__ is not None and inner.__cause__ is not inner:
        inner = inner.__cause__
    text = str(getattr(inner, "strerror", None) or inner)
    if isinstance(inner, aiohttp.ClientConnectorError):
        text = str(inner.os_error.strerror or inner.os_error)
    return f"{type(inner).__name__}: {text}"[:300]
