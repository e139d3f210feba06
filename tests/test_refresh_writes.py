"""A poller's fetch records are written in batches (one transaction each), on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis

from ingest.metrics import RedisMetrics
from ingest.models import Feed, FetchResult, utcnow
from ingest.services import refresh
from ingest.services.intake import Intake
from ingest.services.refresh import Refresher
from ingest.settings import Settings
from ingest.store.base import Store

LEASE = 45.0


class NoQueue:
    """The queue port; a 304 queues nothing, so nothing may reach it."""

    def enqueue(self, batches: object) -> None:
        raise AssertionError("a 304 queued a batch")


def refresher(store: Store, settings: Settings, redis_client: redis.Redis) -> Refresher:
    metrics = RedisMetrics(redis_client, settings.redis_prefix)
    intake = Intake(store, NoQueue(), metrics, batch_size=50)  # type: ignore[arg-type]
    return Refresher(store, intake, metrics, settings)


def not_modified(feed: Feed) -> FetchResult:
    return FetchResult(url=feed.url, status=304, content=None, headers={"etag": '"v2"'}, etag='"v2"')


def test_records_are_held_until_a_batch_is_full_or_flushed(
    store: Store, settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records of a poller wait for WRITE_BATCH of them (then one write) or for `flush`."""
    monkeypatch.setattr(refresh, "WRITE_BATCH", 3)
    rf = refresher(store, settings, redis_client)
    for n in range(5):
        store.add_feed(f"https://feed{n}.example/rss")
    claimed = store.claim_due_feeds(utcnow(), "p1", 10, LEASE)
    assert len(claimed) == 5
    for feed in claimed[:2]:
        rf.refresh(feed, not_modified(feed), owner="p1")
    assert all(store.get_feed(f.id).etag is None for f in claimed)  # held
    rf.refresh(claimed[2], not_modified(claimed[2]), owner="p1")
    assert [store.get_feed(f.id).etag for f in claimed[:3]] == ['"v2"'] * 3  # a full batch: written
    rf.refresh(claimed[3], not_modified(claimed[3]), owner="p1")
    assert store.get_feed(claimed[3].id).etag is None
    assert rf.flush() == 0
    assert store.get_feed(claimed[3].id).etag == '"v2"'
    assert store.get_feed(claimed[4].id).etag is None  # never refreshed: still leased, not recorded
    recorded = store.get_feed(claimed[0].id)
    assert recorded.next_poll_at is not None and recorded.next_poll_at > utcnow()
    # written records cleared their leases (and are not due); the unrecorded feed stays leased
    assert store.claim_due_feeds(utcnow(), "p2", 10, LEASE) == []
    later = utcnow() + timedelta(seconds=LEASE + 1)
    assert [f.id for f in store.claim_due_feeds(later, "p2", 10, LEASE)] == [claimed[4].id]


def test_a_lost_lease_is_counted_at_the_flush(
    store: Store, settings: Settings, redis_client: redis.Redis
) -> None:
    """Held records whose leases ended and were taken over are not written; flush counts them."""
    rf = refresher(store, settings, redis_client)
    for n in range(2):
        store.add_feed(f"https://feed{n}.example/rss")
    now = utcnow()
    mine = store.claim_due_feeds(now - timedelta(seconds=LEASE + 5), "slow", 10, LEASE)
    assert len(store.claim_due_feeds(now, "fast", 10, LEASE)) == 2  # the slow poller's leases ended
    for feed in mine:
        rf.refresh(feed, not_modified(feed), owner="slow")
    assert rf.flush() == 2
    assert [store.get_feed(f.id).etag for f in mine] == [None, None]
