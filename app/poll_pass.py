"""One poller pass: claim feeds in chunks, fetch them politely, hand each outcome to the refresh service.

Any number of pollers run passes at once. A pass keeps at most INGEST_POLL_BATCH claimed feeds
in hand (memory stays flat whatever the number of feeds, and a poller that dies holds at most
that many until their leases end) and claims again, in one statement, whenever half of them are
done. A lease lasts 2 x INGEST_FETCH_TIMEOUT + LEASE_MARGIN seconds; the leases of feeds still
waiting for their host are renewed (one statement) every INGEST_FETCH_TIMEOUT / 2, so a fetch
starts with at least 1.5 fetch timeouts of lease left: the fetch and the refresh end while it
holds. A poller that dies renews nothing: its feeds are free one lease later.

Before fetching, a feed takes, in order: its host's slot in this process (the per-host slot
first, so feeds waiting for a busy host never hold a global one), its host's slot shared by
every poller (`ingest.net.hosts`, Redis; while all are busy the feed waits, with growing
pauses, never spinning), and one of this process's INGEST_FETCH_CONCURRENCY slots. A host
backed off after a 429 or a Retry-After is not fetched by anyone: its feeds are given back due
when the back-off ends. Without Redis nothing is fetched: politeness could not be kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis
import redis.asyncio as aredis

from app.runtime import Runtime
from ingest.errors import FetchError
from ingest.feeds import websub
from ingest.fetch import fetch_feed_async, make_async_client
from ingest.log import get_logger
from ingest.models import Feed, FetchResult, ParsedFeed, utcnow
from ingest.net.guard import check_scheme
from ingest.net.hosts import HostSlots
from ingest.services.websub import FormPoster, subscribe

log = get_logger(__name__)

LEASE_MARGIN = 5.0  # seconds of a feed's lease beyond two fetch timeouts, for the refresh
WAIT_FIRST, WAIT_MOST = 0.05, 1.0  # pauses between two tries of a host whose shared slots are busy
TICK = 0.05  # the pass looks at finished feeds, stop and slots to give back this often
REDIS_CONNECTIONS = 16  # a pass's connections to Redis for the shared host slots
BACKOFF_429 = 60.0  # seconds every poller leaves a host alone after a 429 without Retry-After
RECORD_EVERY = 1.0  # seconds a fetch record may wait to be written with others (the refresher batches)


def lease_seconds(fetch_timeout: float) -> float:
    """How long a claim holds a feed: two fetch timeouts and a margin."""
    return 2 * max(fetch_timeout, 1.0) + LEASE_MARGIN


def host_key(url: str) -> str:
    """What the per-host limits count by: the host name (ports of one host share it)."""
    return (urlsplit(url).hostname or url).lower()


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
    deferred: int = 0  # its host backed off (429, Retry-After): due again when the back-off ends
    released: int = 0  # given back unfetched (stopping, Redis gone), for the next claim
    lost: int = 0  # fetched, but the lease had passed to another poller: nothing recorded
    seconds: float = 0.0

    def add(self, counts: dict[str, int]) -> None:
        with _SUMMARY_LOCK:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_SUMMARY_LOCK = threading.Lock()


class PollPass:
    """The feeds of one pass, claimed chunk by chunk; `run()` returns when none is left (or on stop)."""

    def __init__(self, rt: Runtime, owner: str, summary: PollSummary, *, only_due: bool,
                 stop: Callable[[], bool], between: Callable[[], object]) -> None:  # fmt: skip
        s = rt.settings
        self.rt, self.owner, self.summary, self.only_due = rt, owner, summary, only_due
        self.stop, self.between = stop, between
        self.lease = lease_seconds(s.fetch_timeout)
        self.renew_every = max(s.fetch_timeout, 1.0) / 2
        self.waiting: set[int] = set()  # claimed feeds whose fetch has not started: their leases are renewed
        self.window = s.poll_batch
        self.overall = asyncio.Semaphore(s.fetch_concurrency)
        self.hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(s.fetch_per_host)
        )
        self.backed_off: dict[str, float] = {}  # host -> monotonic end of its back-off, as learnt
        self.give_back: list[int] = []
        self.defer: defaultdict[datetime, list[int]] = defaultdict(list)
        self.refreshing: set[asyncio.Task[None]] = set()
        self.claimed = 0
        self.cursor = 0
        self.recorded_at = time.monotonic()
        self.redis_error: redis.RedisError | None = None

    async def run(self) -> int:
        """Poll until nothing is left to claim; the feeds claimed."""
        # acquires beyond REDIS_CONNECTIONS at once wait for a connection, as long as it takes (a plain
        # pool refuses them); a dead Redis still fails each call within the socket timeouts
        pool = aredis.BlockingConnectionPool.from_url(
            self.rt.redis_url,
            max_connections=REDIS_CONNECTIONS,
            timeout=None,
            socket_connect_timeout=2,
            socket_timeout=5,
        )
        aclient = aredis.Redis.from_pool(pool)
        s = self.rt.settings
        self.slots = HostSlots(aclient, s.redis_prefix, per_host=s.fetch_per_host, lifetime=self.lease,
                               owner=self.owner)  # fmt: skip
        try:
            async with make_async_client(s, max_connections=s.fetch_concurrency) as client:
                self.client = client
                await self._loop()
        finally:
            try:
                await self._settle()
            except Exception as exc:  # database down: the leases end on their own
                log.warning("claims_not_given_back", error=f"{type(exc).__name__}: {exc}")
            finally:
                await aclient.aclose()
        if self.redis_error is not None:
            raise self.redis_error
        return self.claimed - self.summary.released  # a claim given back and taken again counts once

    async def _loop(self) -> None:
        pending: set[asyncio.Task[None]] = set()
        finished = asyncio.Event()

        def done(task: asyncio.Task[None]) -> None:
            pending.discard(task)
            self.refreshing.discard(task)  # nothing of a finished feed is kept: memory stays flat
            finished.set()

        exhausted = False
        renewed = time.monotonic()
        try:
            while not self.stop():
                if self.waiting and time.monotonic() - renewed >= self.renew_every:
                    waiting = list(self.waiting)
                    await asyncio.to_thread(
                        self.rt.store.renew_feeds, self.owner, waiting, utcnow(), self.lease
                    )
                    renewed = time.monotonic()
                if not exhausted and self.redis_error is None and len(pending) <= self.window // 2:
                    want = self.window - len(pending)
                    feeds = await asyncio.to_thread(self._claim, want, *self._returns())
                    exhausted = len(feeds) < want
                    if feeds:
                        renewed = time.monotonic() if not self.waiting else renewed
                    self.waiting.update(f.id for f in feeds)
                    for feed in feeds:
                        task = asyncio.create_task(self._one(feed))
                        pending.add(task)
                        task.add_done_callback(done)
                if not pending:
                    return
                finished.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(finished.wait(), TICK)
                await self._send_returns(older_than=TICK)
                if time.monotonic() - self.recorded_at >= RECORD_EVERY:
                    await self._write_records()
        finally:
            for task in list(pending):
                if task not in self.refreshing:  # a refresh under way finishes: its fetch is recorded
                    task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _returns(self) -> tuple[list[int], dict[datetime, list[int]]]:
        """The claims to give back, taken on the loop's thread (tasks add to them there)."""
        ids, self.give_back = self.give_back, []
        deferred, self.defer = self.defer, defaultdict(list)
        return ids, deferred

    def _claim(self, count: int, ids: list[int], deferred: dict[datetime, list[int]]) -> list[Feed]:
        self._release(ids, deferred)
        self.between()
        now = utcnow()
        store = self.rt.store
        if self.only_due:
            feeds = store.claim_due_feeds(now, self.owner, count, self.lease)
        else:
            feeds = store.claim_active_feeds(self.cursor, now, self.owner, count, self.lease)
            self.cursor = max([self.cursor, *(f.id for f in feeds)])
        self.claimed += len(feeds)
        return feeds

    def _release(self, ids: list[int], deferred: dict[datetime, list[int]]) -> None:
        """Give back the leases of feeds not fetched (some due again only after their host's back-off)."""
        store = self.rt.store
        if ids:
            store.release_feeds(self.owner, ids)
        for until, some in deferred.items():
            store.release_feeds(self.owner, some, next_poll_at=until)

    async def _send_returns(self, older_than: float = 0.0) -> None:
        """Send the slots given back at least `older_than` seconds ago that no acquire carried."""
        if self.slots.unsent and self.redis_error is None:
            try:
                await self.slots.flush(older_than)
            except redis.RedisError as exc:
                self._redis_down(exc)

    async def _settle(self) -> None:
        """End of pass: records still held are written, slots and leases not used are given back."""
        await self._write_records()
        await self._send_returns()
        await asyncio.to_thread(self._release, *self._returns())

    async def _write_records(self) -> None:
        """Write the fetch records the refresher holds (it batches them); count leases lost meanwhile."""
        self.recorded_at = time.monotonic()
        lost = await asyncio.to_thread(self.rt.refresher.flush)
        if lost:
            self._count(lost=lost)

    def _redis_down(self, exc: redis.RedisError) -> None:
        if self.redis_error is None:
            log.error("host_slots_unavailable", error=f"{type(exc).__name__}: {exc}")
            self.redis_error = exc

    def _count(self, **counts: int) -> None:
        self.summary.add(counts)

    # -- one feed ------------------------------------------------------------------------------
    async def _one(self, feed: Feed) -> None:
        host = host_key(feed.url)
        try:
            outcome = await self._fetch_politely(feed, host)
            if outcome is None:
                return
            task = asyncio.current_task()
            assert task is not None
            self.refreshing.add(task)
            done = await asyncio.to_thread(self.rt.refresher.refresh, feed, outcome[0], outcome[1],
                                           owner=self.owner)  # fmt: skip
            self._count(**done.counts)
            if done.parsed is not None and done.parsed.hub and self.rt.settings.public_url:
                await _keep_websub(self.rt, self.client, feed, done.parsed)
        except asyncio.CancelledError:
            self._skip(feed)
            raise
        except redis.RedisError as exc:
            self._skip(feed)
            self._redis_down(exc)
        except Exception as exc:  # one feed never stops the pass; its lease ends on its own
            self._count(errors=1)
            log.error("feed_failed", feed_id=feed.id, feed_url=feed.url, error=f"{type(exc).__name__}: {exc}")
        finally:
            self.waiting.discard(feed.id)

    async def _fetch_politely(self, feed: Feed, host: str) -> tuple[FetchResult | FetchError, float] | None:
        """The fetch under the three limits; None when it did not happen (its host backed off)."""
        local = self.hosts[host]
        await local.acquire()
        try:
            token = await self._shared_slot(feed, host)
            if token is None:
                return None
            try:
                await self.overall.acquire()
                try:
                    self.waiting.discard(feed.id)
                    started = time.monotonic()
                    outcome = await _fetch(self.rt, self.client, feed)
                    seconds = time.monotonic() - started
                finally:
                    self.overall.release()
                if isinstance(outcome, FetchError):  # before the slot is given back: no rival slips in
                    await self._back_off_host(host, outcome)
                return outcome, seconds
            finally:
                self.slots.release(host, token)
        finally:
            local.release()

    def _skip(self, feed: Feed) -> None:
        """Not fetched, or fetched but not recorded (stopping, Redis gone): the lease goes back, for
        the next claim (by anyone). A refresh under way records and clears it itself."""
        if asyncio.current_task() not in self.refreshing:
            self.give_back.append(feed.id)
            self._count(released=1)

    async def _shared_slot(self, feed: Feed, host: str) -> str | None:
        """A slot of the host shared by all pollers, waiting while they are busy; None if backed off."""
        wait = WAIT_FIRST
        while True:
            known = self.backed_off.get(host, 0.0) - time.monotonic()
            grant = await self.slots.acquire(host) if known <= 0 else None
            if grant is not None and grant.token is not None:
                return grant.token
            backoff = known if grant is None else grant.backoff
            if backoff > 0:
                self.backed_off[host] = time.monotonic() + backoff
                self.defer[_second_after(utcnow() + timedelta(seconds=backoff))].append(feed.id)
                self._count(deferred=1)
                log.info(
                    "feed_deferred", feed_id=feed.id, feed_url=feed.url, host=host, seconds=round(backoff, 1)
                )
                return None
            await asyncio.sleep(wait * random.uniform(0.5, 1.0))
            wait = min(wait * 2, WAIT_MOST)

    async def _back_off_host(self, host: str, error: FetchError) -> None:
        """A 429, or any Retry-After: every poller leaves the host alone that long."""
        if error.status != 429 and error.retry_after is None:
            return
        seconds = min(error.retry_after or BACKOFF_429, float(self.rt.settings.max_poll_interval))
        if seconds <= 0:
            return
        self.backed_off[host] = time.monotonic() + seconds
        await self.slots.back_off(host, seconds)
        log.info("host_backed_off", host=host, seconds=round(seconds, 1), status=error.status)


def _second_after(when: datetime) -> datetime:
    """`when` rounded up to the second: feeds deferred together are given back in one statement."""
    return when.replace(microsecond=0) + timedelta(seconds=1)


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
