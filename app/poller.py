"""The poller: fetch due feeds concurrently, queue what is new or changed, record each feed's state.

Fetching is I/O-bound and runs on one asyncio loop under a global limit and a per-host
limit (the per-host slot is taken first, so feeds waiting for a busy host never hold a
global slot: one slow host cannot delay the others). Handling a response (parse, queue,
record) is blocking work and runs in threads as each fetch completes. When to poll next
is decided by `ingest.feeds.schedule`; WebSub subscriptions are kept up by `ingest.feeds.websub`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
import structlog
from starlette.routing import Route

from app.runtime import Context
from ingest import metrics
from ingest.errors import FetchError, ParseError, StoreError
from ingest.feeds import schedule, websub
from ingest.fetch import fetch_feed_async, make_async_client
from ingest.log import get_logger
from ingest.models import Feed, FetchResult, ParsedFeed, RawEntry, utcnow
from ingest.parse import entry_hash, parse_feed
from workers.recovery import enqueue_batches, recover

log = get_logger(__name__)

MAX_PAUSE = 30.0  # longest pause between two passes after failures
MOVE_AFTER = 3  # consecutive polls that must see the same permanent redirect before the feed moves
Bound = structlog.typing.FilteringBoundLogger


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

    def add(self, **counts: int) -> None:
        with _SUMMARY_LOCK:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_SUMMARY_LOCK = threading.Lock()


@dataclass(frozen=True)
class Queued:
    """What `queue_entries` put on the ingest queue."""

    new: int
    updated: int
    jobs: int


def queue_entries(ctx: Context, feed: Feed, entries: Sequence[RawEntry]) -> Queued:
    """Queue entries never queued before, and entries whose content changed since (as updates).

    The same step serves polls and WebSub pushes. The batches are written to the database in
    the transaction that marks their entries seen (with their content hash), then queued: if
    Redis loses the job, `workers.recovery` queues the batch again from the database.
    """
    unique: dict[str, tuple[RawEntry, str]] = {}
    for entry in entries:
        unique.setdefault(entry.entry_key, (entry, entry_hash(entry)))
    seen = ctx.store.seen_entry_hashes(feed.id, list(unique))
    queued: list[RawEntry] = []
    record: dict[str, str] = {}
    new = updated = 0
    for key, (entry, digest) in unique.items():
        if key not in seen:
            new += 1
        elif seen[key] is not None and seen[key] != digest:
            updated += 1
        else:
            if seen[key] is None:
                record[key] = digest  # seen before hashes were kept: remember, do not re-queue
            continue
        queued.append(entry)
        record[key] = digest
    size = ctx.settings.batch_size
    batches = [[e.to_dict() for e in queued[i : i + size]] for i in range(0, len(queued), size)]
    stored = ctx.store.add_batches(feed.id, batches, record) if record else []
    try:
        enqueue_batches(ctx, stored)
    except redis.RedisError as exc:  # the batches are in the database: recovery queues them
        log.warning("batch_enqueue_failed", feed_id=feed.id, batch_ids=[b.id for b in stored], error=str(exc))
    with ctx.redis.pipeline(transaction=False) as pipe:
        metrics.record(pipe, ctx.settings.redis_prefix, "ingest_entries_seen_total", value=len(entries))
        metrics.record(pipe, ctx.settings.redis_prefix, "ingest_entries_new_total", value=new)
        with contextlib.suppress(redis.RedisError):  # a lost count never fails a poll
            pipe.execute()
    return Queued(new=new, updated=updated, jobs=len(batches))


def websub_routes_for(ctx: Context) -> list[Route]:
    """The WebSub callback routes bound to this process's store and queue (for the HTTP API)."""
    return websub.websub_routes(
        ctx.store, ctx.settings, lambda feed, entries: queue_entries(ctx, feed, entries)
    )


def poll_once(ctx: Context, *, only_due: bool = True) -> PollSummary:
    """Poll every due feed (or every active feed) once and queue new and changed entries."""
    started = time.monotonic()
    feeds = (
        ctx.store.due_feeds(utcnow())
        if only_due
        else [f for f in ctx.store.list_feeds() if f.status == "active"]
    )
    summary = PollSummary(feeds=len(feeds))
    if feeds:
        asyncio.run(_poll_all(ctx, feeds, summary))
        ctx.metrics.flush()  # the pass's counts in one round trip
    summary.seconds = round(time.monotonic() - started, 3)
    if feeds or not only_due:
        log.info("poll_pass", **summary.as_dict())
    return summary


def host_key(url: str) -> str:
    """What the per-host limit counts by: the host name (ports of one host share it)."""
    return (urlsplit(url).hostname or url).lower()


async def _poll_all(ctx: Context, feeds: Sequence[Feed], summary: PollSummary) -> None:
    settings = ctx.settings
    overall = asyncio.Semaphore(settings.fetch_concurrency)
    hosts: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(settings.fetch_per_host))
    async with make_async_client(settings, max_connections=settings.fetch_concurrency) as client:

        async def one(feed: Feed) -> None:
            try:
                async with hosts[host_key(feed.url)], overall:
                    started = time.monotonic()
                    outcome = await _fetch(ctx, client, feed)
                    seconds = time.monotonic() - started
                parsed = await asyncio.to_thread(_handle, ctx, feed, outcome, summary, seconds)
                if parsed is not None and parsed.hub and settings.public_url:
                    await _keep_websub(ctx, client, feed, parsed)
            except Exception as exc:  # one feed never stops the pass
                summary.add(errors=1)
                log.error(
                    "feed_failed", feed_id=feed.id, feed_url=feed.url, error=f"{type(exc).__name__}: {exc}"
                )

        await asyncio.gather(*(one(feed) for feed in feeds))


async def _fetch(ctx: Context, client: httpx.AsyncClient, feed: Feed) -> FetchResult | FetchError:
    try:
        return await fetch_feed_async(
            client,
            feed.url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            max_bytes=ctx.settings.max_body_bytes,
            timeout=ctx.settings.fetch_timeout,
        )
    except FetchError as exc:
        return exc


async def _keep_websub(ctx: Context, client: httpx.AsyncClient, feed: Feed, parsed: ParsedFeed) -> None:
    hub, topic = parsed.hub or "", parsed.self_url or feed.url
    sub = await asyncio.to_thread(ctx.store.get_websub, feed.id)
    if websub.needs_subscription(sub, hub, topic, utcnow()):
        await websub.subscribe(client, ctx.store, ctx.settings, feed, hub, topic)


def _count(ctx: Context, outcome: str, seconds: float | None) -> None:
    prefix = ctx.settings.redis_prefix
    metrics.record(ctx.metrics, prefix, "ingest_feeds_polled_total", {"outcome": outcome})
    if seconds is not None:
        metrics.observe(ctx.metrics, prefix, "ingest_fetch_seconds", seconds)


def _handle(
    ctx: Context,
    feed: Feed,
    outcome: FetchResult | FetchError,
    summary: PollSummary,
    seconds: float | None = None,
) -> ParsedFeed | None:
    """Record one fetch's outcome; return the parsed feed after a 200."""
    bound = log.bind(feed_id=feed.id, feed_url=feed.url)
    now = utcnow()
    label = (
        ("gone" if outcome.status == 410 else "error")
        if isinstance(outcome, FetchError)
        else ("not_modified" if outcome.not_modified else "ok")
    )
    _count(ctx, label, seconds)
    if isinstance(outcome, FetchError):
        if outcome.status == 410:
            _mute_gone(ctx, feed, outcome, now, bound)
            summary.add(errors=1, muted=1)
        else:
            _record_error(ctx, feed, outcome.reason, outcome.retry_after, outcome.status, now, bound)
            summary.add(errors=1)
        return None
    feed = _follow_redirect(ctx, feed, outcome, bound, summary)
    if outcome.not_modified:
        _record_success(ctx, feed, outcome, None, 0, now)
        summary.add(not_modified=1)
        bound.info("feed_polled", status=304, entries=0, new=0)
        return None
    try:
        parsed = parse_feed(outcome, feed_id=feed.id, feed_url=feed.url, max_entries=ctx.settings.max_entries)
    except ParseError as exc:
        _record_error(ctx, feed, str(exc), None, outcome.status, now, bound)
        summary.add(errors=1)
        return None
    queued = queue_entries(ctx, feed, parsed.entries)
    _record_success(ctx, feed, outcome, parsed, queued.new, now)
    summary.add(ok=1, entries=len(parsed.entries), new=queued.new, updated=queued.updated, jobs=queued.jobs)
    bound.info(
        "feed_polled",
        status=outcome.status,
        entries=len(parsed.entries),
        new=queued.new,
        updated=queued.updated,
        warnings=parsed.warnings or None,
    )
    return parsed


def _follow_redirect(
    ctx: Context, feed: Feed, result: FetchResult, bound: Bound, summary: PollSummary
) -> Feed:
    """Count consecutive polls that see the same permanent redirect; at MOVE_AFTER, move the feed."""
    target = result.permanent_redirect
    if not target:
        return replace(feed, redirect_url=None, redirect_count=0)
    count = feed.redirect_count + 1 if feed.redirect_url == target else 1
    if count < MOVE_AFTER:
        return replace(feed, redirect_url=target, redirect_count=count)
    try:
        moved = ctx.store.move_feed(feed.id, target)
    except StoreError as exc:
        bound.warning("feed_move_refused", target=target, error=str(exc))
        return replace(feed, redirect_url=target, redirect_count=count)
    summary.add(moved=1)
    bound.info("feed_moved", new_url=target, after_polls=count)
    return replace(
        feed, url=moved.url, previous_urls=moved.previous_urls, redirect_url=None, redirect_count=0
    )


def _entry_dates(parsed: ParsedFeed | None) -> list[datetime]:
    return [e.published_at for e in parsed.entries if e.published_at] if parsed else []


def _record_success(
    ctx: Context, feed: Feed, result: FetchResult, parsed: ParsedFeed | None, new: int, now: datetime
) -> None:
    dates = _entry_dates(parsed)
    last_entry_at, entry_interval = schedule.observe(feed, now, new, dates)
    learnt = replace(feed, last_entry_at=last_entry_at, entry_interval=entry_interval)
    active = websub.is_active(ctx.store.get_websub(feed.id), now) if ctx.settings.public_url else False
    decision = schedule.after_success(
        learnt,
        now,
        bounds=schedule.Bounds.from_settings(ctx.settings),
        headers=result.headers,
        dates=dates,
        websub_active=active,
        ttl_minutes=parsed.ttl_minutes if parsed else None,
    )
    ctx.store.record_fetch(
        replace(
            learnt,
            title=(parsed.title if parsed and parsed.title else feed.title),
            etag=result.etag or feed.etag,
            last_modified=result.last_modified or feed.last_modified,
            last_polled_at=now,
            last_success_at=now,
            last_error=None,
            consecutive_errors=0,
            next_poll_at=decision.next_at,
            schedule_interval=decision.interval,
            schedule_reason=decision.reason,
            last_status=result.status,
        )
    )


def _record_error(
    ctx: Context,
    feed: Feed,
    message: str,
    retry_after: float | None,
    status: int | None,
    now: datetime,
    bound: Bound,
) -> None:
    """Back off exponentially per feed, never disabling it."""
    failing = replace(feed, consecutive_errors=feed.consecutive_errors + 1)
    decision = schedule.after_error(
        failing, now, bounds=schedule.Bounds.from_settings(ctx.settings), retry_after=retry_after
    )
    ctx.store.record_fetch(
        replace(
            failing,
            last_polled_at=now,
            last_error=message,
            next_poll_at=decision.next_at,
            schedule_interval=decision.interval,
            schedule_reason=decision.reason,
            last_status=status if status is not None else feed.last_status,
        )
    )
    bound.warning(
        "feed_error", error=message, consecutive_errors=failing.consecutive_errors, retry_in=decision.interval
    )


def _mute_gone(ctx: Context, feed: Feed, error: FetchError, now: datetime, bound: Bound) -> None:
    """410 Gone: stop polling (status `gone`) until someone runs `ingest feeds enable`."""
    reason = (
        f"HTTP 410 Gone on {now.date().isoformat()}: the server says the feed was removed for good; "
        f"`ingest feeds enable {feed.id}` resumes polling"
    )
    ctx.store.record_fetch(
        replace(
            feed,
            status="gone",
            muted_reason=reason,
            last_polled_at=now,
            last_error=error.reason,
            consecutive_errors=feed.consecutive_errors + 1,
            next_poll_at=None,
            schedule_interval=None,
            schedule_reason="muted: 410 Gone",
            last_status=410,
        )
    )
    bound.warning("feed_gone", error=error.reason)


def run_poller(ctx: Context, stop: threading.Event, *, tick: float = 1.0) -> None:
    """Poll due feeds, sweep the outbox and recover lost batches until `stop` is set.

    A pass that fails (database or Redis down) is logged and tried again after a pause that
    doubles up to MAX_PAUSE; SIGTERM sets `stop`, which ends the loop between passes.
    """
    from app.sweeper import sweep

    last_sweep = 0.0
    pause = tick
    log.info("poller_started")
    while not stop.is_set():
        try:
            poll_once(ctx, only_due=True)
            if time.monotonic() - last_sweep >= ctx.settings.sweep_interval:
                sweep(ctx)
                recover(ctx)
                last_sweep = time.monotonic()
            pause = tick
        except Exception as exc:  # the loop must outlive any one failure
            log.error("poll_loop_failed", error=f"{type(exc).__name__}: {exc}", retry_in=pause)
            pause = min(pause * 2, MAX_PAUSE)
        stop.wait(pause)
    log.info("poller_stopped")
