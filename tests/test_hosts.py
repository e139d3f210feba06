"""The shared per-host slots and back-offs (`ingest.net.hosts`) on the run's real Redis, the sweeps'
once-per-period rule (`ingest.services.sweeps`), and a refresh whose lease was taken over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import redis
import redis.asyncio as aredis

from app.runtime import Runtime
from ingest.models import FetchResult, utcnow
from ingest.net.hosts import HostSlots
from ingest.services.sweeps import Sweeps
from ingest.settings import Settings
from ingest.store.base import Store


def slots_test(redis_url: str, body: Callable[[aredis.Redis], object]) -> None:
    async def main() -> None:
        client = aredis.Redis.from_url(redis_url)
        try:
            await body(client)  # type: ignore[misc]
        finally:
            await client.aclose()

    asyncio.run(main())


def test_slots_cap_a_host_across_pollers(redis_url: str, redis_client: redis.Redis) -> None:
    """Two pollers share a host's 2 slots; a slot given back rides with the next acquire."""

    async def body(client: aredis.Redis) -> None:
        one = HostSlots(client, "t:", per_host=2, lifetime=30, owner="one")
        two = HostSlots(client, "t:", per_host=2, lifetime=30, owner="two")
        first, second = await one.acquire("example.com"), await two.acquire("example.com")
        assert first.token and second.token
        assert (await two.acquire("example.com")).token is None  # full: wait, not a back-off
        assert (await one.acquire("other.example")).token  # another host has its own slots
        one.release("example.com", first.token)
        assert one.unsent == 1 and redis_client.zcard("t:host:example.com:slots") == 2
        assert (await one.acquire("example.com")).token  # the release went with this round trip
        assert one.unsent == 0 and redis_client.zcard("t:host:example.com:slots") == 2
        two.release("example.com", second.token)
        await two.flush()
        assert redis_client.zcard("t:host:example.com:slots") == 1

    slots_test(redis_url, body)


def test_a_dead_pollers_slots_expire(redis_url: str, redis_client: redis.Redis) -> None:
    async def body(client: aredis.Redis) -> None:
        dead = HostSlots(client, "t:", per_host=1, lifetime=0.3, owner="dead")
        alive = HostSlots(client, "t:", per_host=1, lifetime=0.3, owner="alive")
        assert (await dead.acquire("example.com")).token
        assert (await alive.acquire("example.com")).token is None
        await asyncio.sleep(0.4)
        assert (await alive.acquire("example.com")).token

    slots_test(redis_url, body)


def test_back_off_stops_every_poller_and_only_grows(redis_url: str, redis_client: redis.Redis) -> None:
    async def body(client: aredis.Redis) -> None:
        one = HostSlots(client, "t:", per_host=4, lifetime=30, owner="one")
        two = HostSlots(client, "t:", per_host=4, lifetime=30, owner="two")
        await one.back_off("example.com", 60)
        await two.back_off("example.com", 5)  # shorter: the longer one stays
        grant = await two.acquire("example.com")
        assert grant.token is None and 55 < grant.backoff <= 60
        assert (await two.acquire("other.example")).token

    slots_test(redis_url, body)


def test_a_sweep_runs_once_per_period_across_processes(store: Store) -> None:
    ran: list[str] = []
    a, b = Sweeps(store, "a"), Sweeps(store, "b")
    assert a.run("recovery", 0.5, lambda: ran.append("a"))
    assert not b.run("recovery", 0.5, lambda: ran.append("b"))
    time.sleep(0.6)
    assert b.run("recovery", 0.5, lambda: ran.append("b"))
    assert not a.run("recovery", 0.5, lambda: ran.append("a"))
    assert ran == ["a", "b"]


def test_a_refresh_whose_lease_was_taken_over_records_nothing(
    settings: Settings, redis_client: redis.Redis
) -> None:
    rt = Runtime(settings)
    try:
        feed = rt.store.add_feed("https://example.com/feed")
        now = utcnow()
        [mine] = rt.store.claim_due_feeds(now, "slow", 10, 30)
        rt.store.claim_due_feeds(now + timedelta(seconds=31), "fast", 10, 30)
        answer = FetchResult(url=feed.url, status=304, content=None, headers={}, etag='"late"')
        done = rt.refresher.refresh(mine, answer, 0.1, owner="slow")
        assert done.counts == {"not_modified": 1}  # a poller's records are written in batches
        assert rt.refresher.flush() == 1  # the lost one: "fast" holds the lease now
        after = rt.store.get_feed(feed.id)
        assert after.etag is None and after.last_polled_at is None
    finally:
        rt.close()
