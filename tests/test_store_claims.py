"""Feed claims and sweep leases, run against SQLite and PostgreSQL alike (the `store` fixture):
several pollers share the feeds through leases taken in one statement."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ingest.models import Feed
from ingest.store.base import Store
from ingest.store.postgres import PostgresStore
from ingest.store.sqlite import SQLiteStore

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = 45.0


def feeds(store: Store, count: int) -> list[Feed]:
    return [store.add_feed(f"https://feed{n}.example/rss") for n in range(count)]


def scheduled(store: Store, feed: Feed, at: datetime) -> None:
    """Set the feed's next poll time (as a recorded fetch would)."""
    store.record_fetch(replace(feed, next_poll_at=at))


def ids(found: list[Feed]) -> set[int]:
    return {f.id for f in found}


def test_claim_leases_due_feeds_once(store: Store) -> None:
    """Due feeds (never polled, or next poll passed) are leased; a rival gets none of them."""
    a, b, c = feeds(store, 3)
    scheduled(store, b, NOW - timedelta(minutes=5))
    scheduled(store, c, NOW + timedelta(seconds=20))
    first = store.claim_due_feeds(NOW, "p1", 10, LEASE)
    assert ids(first) == {a.id, b.id}
    assert store.claim_due_feeds(NOW, "p2", 10, LEASE) == []
    assert ids(store.claim_due_feeds(NOW + timedelta(seconds=30), "p2", 10, LEASE)) == {c.id}


def test_claim_takes_never_polled_then_most_overdue_up_to_the_limit(store: Store) -> None:
    a, b, c, d = feeds(store, 4)
    scheduled(store, a, NOW - timedelta(minutes=1))
    scheduled(store, b, NOW - timedelta(minutes=9))
    scheduled(store, c, NOW - timedelta(minutes=5))
    assert ids(store.claim_due_feeds(NOW, "p1", 2, LEASE)) == {d.id, b.id}
    assert ids(store.claim_due_feeds(NOW, "p1", 1, LEASE)) == {c.id}
    assert ids(store.claim_due_feeds(NOW, "p1", 5, LEASE)) == {a.id}


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    """A poller that died holds its feeds only until the lease ends; then another claims them."""
    [feed] = feeds(store, 1)
    assert store.claim_due_feeds(NOW, "dead", 10, LEASE)
    assert store.claim_due_feeds(NOW + timedelta(seconds=LEASE - 1), "p2", 10, LEASE) == []
    assert ids(store.claim_due_feeds(NOW + timedelta(seconds=LEASE + 1), "p2", 10, LEASE)) == {feed.id}


def test_record_needs_the_lease(store: Store) -> None:
    """The holder's record clears the lease; one whose lease was taken over writes nothing."""
    [feed] = feeds(store, 1)
    [mine] = store.claim_due_feeds(NOW, "slow", 10, LEASE)
    later = NOW + timedelta(seconds=LEASE + 1)
    [theirs] = store.claim_due_feeds(later, "fast", 10, LEASE)
    assert store.record_fetch(replace(theirs, etag='"fast"', next_poll_at=later), owner="fast")
    assert not store.record_fetch(replace(mine, etag='"slow"', next_poll_at=NOW), owner="slow")
    assert store.get_feed(feed.id).etag == '"fast"'
    # the lease is gone: a due feed is claimable at once, by anyone
    assert ids(store.claim_due_feeds(later + timedelta(seconds=1), "other", 10, LEASE)) == {feed.id}


def test_record_by_hand_ignores_the_lease(store: Store) -> None:
    """`ingest feeds refresh` writes whatever the lease; the poller still holding it then writes nothing."""
    [feed] = feeds(store, 1)
    [claimed] = store.claim_due_feeds(NOW, "p1", 10, LEASE)
    assert store.record_fetch(replace(feed, etag='"hand"', next_poll_at=NOW + timedelta(hours=1)))
    assert not store.record_fetch(replace(claimed, etag='"poller"'), owner="p1")
    assert store.get_feed(feed.id).etag == '"hand"'


def test_release_gives_feeds_back_or_defers_them(store: Store) -> None:
    a, b = feeds(store, 2)
    assert len(store.claim_due_feeds(NOW, "p1", 10, LEASE)) == 2
    assert store.release_feeds("p2", [a.id, b.id]) == 0  # not theirs
    assert store.release_feeds("p1", [a.id]) == 1
    assert store.release_feeds("p1", [b.id], next_poll_at=NOW + timedelta(seconds=20)) == 1
    assert ids(store.claim_due_feeds(NOW, "p2", 10, LEASE)) == {a.id}
    assert ids(store.claim_due_feeds(NOW + timedelta(seconds=30), "p2", 10, LEASE)) == {b.id}


def test_claim_active_walks_every_active_feed_by_id(store: Store) -> None:
    """`poll --once`: due or not, by id after a cursor; muted and leased feeds are left alone."""
    _, b, c, d = feeds(store, 4)
    scheduled(store, b, NOW + timedelta(hours=1))
    store.set_feed_status(c.id, "gone", "410")
    assert store.claim_due_feeds(NOW, "busy", 1, LEASE)  # a (never polled) is someone else's now
    first = store.claim_active_feeds(0, NOW, "once", 1, LEASE)
    assert ids(first) == {b.id}
    assert ids(store.claim_active_feeds(b.id, NOW, "once", 10, LEASE)) == {d.id}
    assert store.claim_active_feeds(d.id, NOW, "once", 10, LEASE) == []


def test_take_lease_once_per_period(store: Store) -> None:
    """A sweep's lease: one taker per period, whoever asks first; free again when it ends."""
    period = timedelta(seconds=30)
    assert store.take_lease("recovery", "p1", NOW, NOW + period)
    assert not store.take_lease("recovery", "p2", NOW + timedelta(seconds=29), NOW + period * 2)
    assert not store.take_lease("recovery", "p1", NOW + timedelta(seconds=29), NOW + period * 2)
    assert store.take_lease("digests", "p2", NOW, NOW + period)  # another sweep, its own lease
    assert store.take_lease("recovery", "p2", NOW + period, NOW + period * 2)


def _connection(store: Store) -> SQLiteStore | PostgresStore:
    if isinstance(store, SQLiteStore):
        return SQLiteStore(store.path)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.url)


def test_concurrent_claims_never_share_a_feed(store: Store) -> None:
    """Four connections claim small chunks at once until nothing is due: every feed exactly once."""
    total = 300
    for n in range(total):
        store.add_feed(f"https://many{n}.example/rss")
    dbs = [_connection(store) for _ in range(4)]
    claimed: list[int] = []
    guard = threading.Lock()
    start = threading.Barrier(len(dbs))

    def poller(owner: str, db: SQLiteStore | PostgresStore) -> None:
        start.wait()
        while got := db.claim_due_feeds(NOW, owner, 7, LEASE):
            with guard:
                claimed.extend(f.id for f in got)

    threads = [threading.Thread(target=poller, args=(f"p{n}", db)) for n, db in enumerate(dbs)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for db in dbs:
            db.close()
    assert sorted(claimed) == sorted(f.id for f in store.list_feeds())
    assert len(claimed) == total
