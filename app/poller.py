"""The poller loop: fetch due feeds concurrently, hand each outcome to the refresh service.

Fetching is I/O-bound and runs on one asyncio loop under a global limit and a per-host limit
(the per-host slot is taken first, so feeds waiting for a busy host never hold a global slot:
one slow host cannot delay the others). What an outcome does to the feed and the queue is
`ingest.services.refresh`'s business; it runs in threads as each fetch completes. Between
passes the loop recovers lost batches every INGEST_SWEEP_INTERVAL seconds.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.lifecycle import use_daemon_threads
from app.runtime import Runtime
from ingest.errors import FetchError
from ingest.feeds import websub
from ingest.fetch import fetch_feed_async, make_async_client
from ingest.log import get_logger
from ingest.models import Feed, FetchResult, ParsedFeed, utcnow
from ingest.net.guard import check_scheme
from ingest.services.websub import FormPoster, subscribe

log = get_logger(__name__)

MAX_PAUSE = 30.0  # longest pause between two passes after failures


@dataclass
class PollSummary:
    """One pass over the feeds, for the log line and `ingest poll --once`."""

    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    errors: int = 0
    entries: int = 0
    new: int = 0
    updated: int = 0
    jobs: int = 0
    moved: int = 0
    muted: int = 0
    seconds: float = 0.0

    def add(self, counts: dict[str, int]) -> None:
        with _SUMMARY_LOCK:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_SUMMARY_LOCK = threading.Lock()


def poll_once(rt: Runtime, *, only_due: bool = True) -> PollSummary:
    """Poll every due feed (or every active feed) once and queue new and changed entries."""
    started = time.monotonic()
    store = rt.store
    feeds = store.due_feeds(utcnow()) if only_due else [f for f in store.list_feeds() if f.status == "active"]
    summary = PollSummary(feeds=len(feeds))
    if feeds:
        asyncio.run(_poll_all(rt, feeds, summary))
        rt.metrics.flush()  # the pass's counts in one round trip
    summary.seconds = round(time.monotonic() - started, 3)
    if feeds or not only_due:
        log.info("poll_pass", **summary.as_dict())
    return summary


def host_key(url: str) -> str:
    """What the per-host limit counts by: the host name (ports of one host share it)."""
    return (urlsplit(url).hostname or url).lower()


async def _poll_all(rt: Runtime, feeds: Sequence[Feed], summary: PollSummary) -> None:
    use_daemon_threads()
    settings = rt.settings
    overall = asyncio.Semaphore(settings.fetch_concurrency)
    hosts: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(settings.fetch_per_host))
    async with make_async_client(settings, max_connections=settings.fetch_concurrency) as client:

        async def one(feed: Feed) -> None:
            try:
                async with hosts[host_key(feed.url)], overall:
                    started = time.monotonic()
                    outcome = await _fetch(rt, client, feed)
                    seconds = time.monotonic() - started
                done = await asyncio.to_thread(rt.refresher.refresh, feed, outcome, seconds)
                summary.add(done.counts)
                if done.parsed is not None and done.parsed.hub and settings.public_url:
                    await _keep_websub(rt, client, feed, done.parsed)
            except Exception as exc:  # one feed never stops the pass
                summary.add({"errors": 1})
                log.error("feed_failed", feed_id=feed.id, feed_url=feed.url,
                          error=f"{type(exc).__name__}: {exc}")  # fmt: skip

        await asyncio.gather(*(one(feed) for feed in feeds))


async def _fetch(rt: Runtime, client: httpx.AsyncClient, feed: Feed) -> FetchResult | FetchError:
    try:
        return await fetch_feed_async(client, feed.url, etag=feed.etag, last_modified=feed.last_modified,
                                      max_bytes=rt.settings.max_body_bytes,
                                      timeout=rt.settings.fetch_timeout)  # fmt: skip
    except FetchError as exc:
        return exc


async def _keep_websub(rt: Runtime, client: httpx.AsyncClient, feed: Feed, parsed: ParsedFeed) -> None:
    hub, topic = parsed.hub or "", parsed.self_url or feed.url
    sub = await asyncio.to_thread(rt.store.get_websub, feed.id)
    if websub.needs_subscription(sub, hub, topic, utcnow()):
        await subscribe(
            _hub_poster(client, rt.settings.fetch_timeout), rt.store, rt.settings, feed, hub, topic
        )


def _hub_poster(client: httpx.AsyncClient, timeout: float) -> FormPoster:
    """POST a WebSub form to a hub through the poller's guarded client."""

    async def post(url: str, form: dict[str, str]) -> int:
        check_scheme(url)
        try:
            response = await client.post(url, data=form, timeout=timeout)
        except httpx.HTTPError as exc:
            raise FetchError(url, f"{type(exc).__name__}: {exc}") from None
        return response.status_code

    return post


def run_poller(rt: Runtime, stop: threading.Event, *, tick: float = 1.0,
               beat: Any = lambda: None) -> None:  # fmt: skip
    """Poll due feeds and recover lost batches until `stop` is set.

    A pass that fails (database or Redis down) is logged and tried again after a pause that
    doubles up to MAX_PAUSE; SIGTERM sets `stop`, which ends the loop between passes.
    """
    last_sweep = 0.0
    pause = tick
    log.info("poller_started")
    while not stop.is_set():
        try:
            poll_once(rt, only_due=True)
            if time.monotonic() - last_sweep >= rt.settings.sweep_interval:
                rt.recovery.recover()
                last_sweep = time.monotonic()
            pause = tick
        except Exception as exc:  # the loop must outlive any one failure
            log.error("poll_loop_failed", error=f"{type(exc).__name__}: {exc}", retry_in=pause)
            pause = min(pause * 2, MAX_PAUSE)
        beat()
        stop.wait(pause)
    log.info("poller_stopped")
