"""The poller: fetch due feeds concurrently, queue what is new, record each feed's state.

Fetching is I/O-bound and runs on one asyncio loop with a global and a
per-host limit, so one slow host never holds the others back. Parsing is
CPU-bound and runs as each fetch completes.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import urlsplit

import structlog

from ingest.errors import FetchError, ParseError
from ingest.fetch import fetch_feed_async, make_async_client
from ingest.log import get_logger
from ingest.models import Feed, FetchResult, ParsedFeed, RawEntry, utcnow
from ingest.parse import parse_feed
from workers.context import Context
from workers.queues import enqueue_batches

log = get_logger(__name__)

GLOBAL_LIMIT = 50
PER_HOST_LIMIT = 4
MAX_BACKOFF = 24 * 3600


@dataclass
class PollSummary:
    """One pass over the feeds, for the log line and `ingest poll --once`."""

    feeds: int = 0
    ok: int = 0
    not_modified: int = 0
    errors: int = 0
    entries: int = 0
    new: int = 0
    jobs: int = 0
    seconds: float = 0.0


def poll_once(ctx: Context, *, only_due: bool = True) -> PollSummary:
    """Poll every due feed (or every active feed) once and queue new entries."""
    started = time.monotonic()
    now = utcnow()
    feeds = ctx.store.due_feeds(now) if only_due else [
        f for f in ctx.store.list_feeds() if f.status == "active"]
    summary = PollSummary(feeds=len(feeds))
    if feeds:
        asyncio.run(_poll_all(ctx, feeds, summary))
    summary.seconds = round(time.monotonic() - started, 3)
    if feeds or not only_due:
        log.info("poll_pass", **summary.__dict__)
    return summary


async def _poll_all(ctx: Context, feeds: Sequence[Feed], summary: PollSummary) -> None:
    overall = asyncio.Semaphore(GLOBAL_LIMIT)
    hosts: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(PER_HOST_LIMIT))
    async with make_async_client(ctx.settings, max_connections=GLOBAL_LIMIT) as client:

        async def one(feed: Feed) -> None:
            async with overall, hosts[urlsplit(feed.url).netloc]:
                outcome = await _fetch(ctx, client, feed)
            _handle(ctx, feed, outcome, summary)

        await asyncio.gather(*(one(feed) for feed in feeds))


async def _fetch(ctx: Context, client, feed: Feed) -> FetchResult | FetchError:  # type: ignore[no-untyped-def]
    try:
        return await fetch_feed_async(client, feed.url, etag=feed.etag, last_modified=feed.last_modified,
                                      max_bytes=ctx.settings.max_body_bytes,
                                      timeout=ctx.settings.fetch_timeout)
    except FetchError as exc:
        return exc


def _handle(ctx: Context, feed: Feed, outcome: FetchResult | FetchError, summary: PollSummary) -> None:
    bound = log.bind(feed_id=feed.id, feed_url=feed.url)
    if isinstance(outcome, FetchError):
        _record_error(ctx, feed, outcome.reason, outcome.retry_after, bound, gone=outcome.permanent)
        summary.errors += 1
        return
    if outcome.not_modified:
        _record_success(ctx, feed, outcome, None)
        summary.not_modified += 1
        bound.info("feed_polled", status=304, entries=0, new=0)
        return
    try:
        parsed = parse_feed(outcome, feed_id=feed.id, feed_url=feed.url,
                            max_entries=ctx.settings.max_entries)
    except ParseError as exc:
        _record_error(ctx, feed, str(exc), None, bound)
        summary.errors += 1
        return
    new = _queue_new(ctx, feed, parsed.entries)
    _record_success(ctx, feed, outcome, parsed)
    summary.ok += 1
    summary.entries += len(parsed.entries)
    summary.new += len(new)
    summary.jobs += -(-len(new) // ctx.settings.batch_size)
    bound.info("feed_polled", status=outcome.status, entries=len(parsed.entries), new=len(new),
               warnings=parsed.warnings or None)


def _queue_new(ctx: Context, feed: Feed, entries: Sequence[RawEntry]) -> list[RawEntry]:
    """Queue entries this feed never queued before; mark them seen only once queued."""
    unseen = ctx.store.unseen_entry_keys(feed.id, [e.entry_key for e in entries])
    new, taken = [], set()
    for entry in entries:
        if entry.entry_key in unseen and entry.entry_key not in taken:
            taken.add(entry.entry_key)
            new.append(entry)
    size = ctx.settings.batch_size
    batches = [[e.to_dict() for e in new[i:i + size]] for i in range(0, len(new), size)]
    enqueue_batches(ctx.queues[0], batches)
    ctx.store.mark_entries_seen(feed.id, [e.entry_key for e in new])
    return new


def _interval(ctx: Context, feed: Feed) -> float:
    base = feed.interval or ctx.settings.poll_interval
    return base * random.uniform(0.95, 1.05)  # jitter: feeds added together drift apart


def _record_success(ctx: Context, feed: Feed, result: FetchResult, parsed: ParsedFeed | None) -> None:
    now = utcnow()
    ctx.store.record_fetch(replace(
        feed,
        title=(parsed.title if parsed and parsed.title else feed.title),
        etag=result.etag or feed.etag, last_modified=result.last_modified or feed.last_modified,
        last_polled_at=now, last_success_at=now, last_error=None, consecutive_errors=0,
        next_poll_at=now + timedelta(seconds=_interval(ctx, feed)),
    ))


def _record_error(ctx: Context, feed: Feed, message: str, retry_after: float | None,
                  bound: structlog.typing.FilteringBoundLogger, *, gone: bool = False) -> None:
    """Back off exponentially per feed, never disabling it; 410 Gone mutes it."""
    now = utcnow()
    errors = feed.consecutive_errors + 1
    delay = min(MAX_BACKOFF, 60 * 2 ** min(errors - 1, 16))
    if retry_after:
        delay = max(delay, min(retry_after, MAX_BACKOFF))
    ctx.store.record_fetch(replace(
        feed, status="gone" if gone else feed.status, last_polled_at=now, last_error=message,
        consecutive_errors=errors, next_poll_at=now + timedelta(seconds=delay),
    ))
    bound.warning("feed_error", error=message, consecutive_errors=errors, retry_in=round(delay))


def run_poller(ctx: Context, stop: threading.Event, *, tick: float = 1.0) -> None:
    """Poll due feeds and sweep the outbox until `stop` is set."""
    from workers.sweeper import sweep

    last_sweep = 0.0
    log.info("poller_started", feeds=len(ctx.store.list_feeds()))
    while not stop.is_set():
        poll_once(ctx, only_due=True)
        if time.monotonic() - last_sweep >= ctx.settings.sweep_interval:
            sweep(ctx)
            last_sweep = time.monotonic()
        stop.wait(tick)
    log.info("poller_stopped")
