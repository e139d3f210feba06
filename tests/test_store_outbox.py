"""The outbox's sender interface on SQLite and PostgreSQL: claims with leases, outcomes, receivers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from ingest.models import Alert, Subscription, utcnow
from ingest.store.base import Store
from ingest.store.outbox import AttemptOutcome, Claim, ReceiverState
from ingest.store.postgres import PostgresStore
from ingest.store.sqlite import SQLiteStore

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LEASE = NOW + timedelta(seconds=30)
SECRET = "whsec_c2VjcmV0"


def sub(name: str, webhook: str | None = None, status: str = "active") -> Subscription:
    return Subscription(
        id=name,
        name=name,
        query="climate",
        webhook=webhook or f"https://{name}.example/hook",
        secret=SECRET,
        status=status,
    )


def alert(n: int, sub_id: str, *, due: datetime | None = None, status: str = "pending") -> Alert:
    return Alert(
        id=f"msg_{sub_id}_{n}",
        subscription_id=sub_id,
        story_id=f"s{n}",
        article_id=f"a{n}",
        matched_terms=["climate"],
        status=status,
        next_attempt_at=due,
        created_at=NOW - timedelta(hours=1) + timedelta(seconds=n),
    )


def claim(
    store: Store, owner: str = "A", *, now: datetime = NOW, subs: int = 10, per: int = 10
) -> list[Claim]:
    return store.claim_alerts(
        owner, now=now, lease_until=now + timedelta(seconds=30), subscriptions=subs, per_subscription=per
    )


def ids(claims: list[Claim]) -> list[str]:
    return [c.alert.id for c in claims]


def delivered(claims: list[Claim]) -> list[AttemptOutcome]:
    return [AttemptOutcome(c.alert.id, "delivered", c.alert.attempts, None, None, True) for c in claims]


def test_claim_takes_oldest_due_alerts_and_counts_the_attempt(store: Store) -> None:
    """Due, unleased pending alerts in (created_at, id) order, attempts + 1, with subscription and secret."""
    store.add_subscription(sub("s1"))
    store.add_alerts(
        [
            alert(1, "s1"),
            alert(2, "s1", due=NOW + timedelta(minutes=5)),  # a retry not yet due
            alert(3, "s1", due=NOW),
            alert(4, "s1"),
            alert(5, "s1", status="failed"),
        ]
    )
    claims = claim(store, per=2)
    assert ids(claims) == ["msg_s1_1", "msg_s1_3"]
    assert [c.alert.attempts for c in claims] == [1, 1] == [store.get_alert(i).attempts for i in ids(claims)]
    assert claims[0].subscription == store.get_subscription("s1") and claims[0].secrets == [SECRET]
    assert claim(store, "B") == []  # the subscription has alerts in flight
    later = NOW + timedelta(minutes=10)
    store.finish_attempts("A", delivered(claims), now=NOW)
    assert ids(claim(store, "B", now=later)) == ["msg_s1_2", "msg_s1_4"]


def test_a_subscription_with_10000_pending_alerts_does_not_delay_one_with_1(store: Store) -> None:
    """While the big subscription's group is in flight the small one is claimed at once; after the big
    one's turn, the small one (claimed longer ago) comes next although the big one has 9,980 more due."""
    store.add_subscription(sub("big"))
    store.add_subscription(sub("small"))
    store.add_alerts([alert(n, "big") for n in range(10_000)])
    store.add_alerts([alert(20_000, "small")])
    first = claim(store, subs=1, per=10)
    assert {c.subscription.id for c in first} == {"big"} and len(first) == 10
    second = claim(store, "B", subs=1, per=10)
    assert ids(second) == ["msg_small_20000"]
    store.finish_attempts("A", delivered(first), now=NOW)
    store.finish_attempts("B", delivered(second), now=NOW)
    store.add_alerts([alert(20_001, "small")])
    t1, t2 = NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)
    big_turn = claim(store, now=t1, subs=1, per=10)
    assert ids(big_turn) == [f"msg_big_{n}" for n in range(10, 20)]  # tie at NOW: by id
    store.finish_attempts("A", delivered(big_turn), now=t1)
    assert ids(claim(store, now=t2, subs=1, per=10)) == ["msg_small_20001"]


def test_claims_come_grouped_fairest_first(store: Store) -> None:
    """Groups by subscription, least recently claimed first, each in alert order."""
    for name in ("s1", "s2", "s3"):
        store.add_subscription(sub(name))
        store.add_alerts([alert(n, name) for n in range(3)])
    store.finish_attempts("A", delivered(claim(store, subs=1, per=1)), now=NOW)  # s1 claimed once
    claims = claim(store, per=2)
    assert ids(claims) == ["msg_s2_0", "msg_s2_1", "msg_s3_0", "msg_s3_1", "msg_s1_1", "msg_s1_2"]


def test_claim_skips_paused_open_circuits_and_keeps_disabled(store: Store) -> None:
    """Paused subscriptions and origins with an open circuit wait; a circuit open until now is closed;
    disabled subscriptions' alerts are claimed (the sender dead-letters them)."""
    store.add_subscription(sub("paused", status="paused"))
    store.add_subscription(sub("broken", "https://Down.example/a"))
    store.add_subscription(sub("also_broken", "https://down.example:443/b"))
    store.add_subscription(sub("disabled", status="disabled"))
    store.add_subscription(sub("healed", "http://healed.example/h"))
    store.add_subscription(sub("fine"))
    for name in ("paused", "broken", "also_broken", "disabled", "healed", "fine"):
        store.add_alerts([alert(1, name)])
    store.save_receiver(
        ReceiverState("https://down.example:443", "open", 5, NOW + timedelta(minutes=1), "500")
    )
    store.save_receiver(ReceiverState("http://healed.example:80", "open", 5, NOW, "timeout"))
    first = claim(store)
    assert {c.subscription.id for c in first} == {"disabled", "healed", "fine"}
    store.finish_attempts("A", delivered(first), now=NOW)
    assert {c.subscription.id for c in claim(store, "B", now=NOW + timedelta(minutes=2))} == {
        "broken",
        "also_broken",
    }


def test_origin_follows_the_webhook(store: Store) -> None:
    """A webhook change moves the subscription to its new receiver's circuit."""
    store.add_subscription(sub("s1", "https://a.example/hook"))
    store.add_alerts([alert(1, "s1"), alert(2, "s1")])
    store.save_receiver(ReceiverState("https://b.example:8443", "open", 3, NOW + timedelta(hours=1), None))
    first = claim(store, per=1)
    assert ids(first) == ["msg_s1_1"]
    store.finish_attempts("A", delivered(first), now=NOW)
    store.update_subscription("s1", webhook="https://B.example:8443/new")
    assert claim(store) == []
    store.update_subscription("s1", name="renamed")  # not a webhook change
    assert claim(store) == []
    store.save_receiver(ReceiverState("https://b.example:8443", "closed", 0, None, None))
    assert ids(claim(store)) == ["msg_s1_2"]
    store.add_subscription(sub("odd", "http://[::1/hook"))  # too broken for an origin: no circuit applies
    store.add_alerts([alert(1, "odd")])
    assert ids(claim(store, "B")) == ["msg_odd_1"]


def test_claim_signs_with_both_secrets_during_grace(store: Store) -> None:
    store.add_subscription(sub("s1"))
    store.rotate_subscription_secret("s1", "whsec_bmV3", previous_valid_until=NOW + timedelta(days=1))
    store.add_alerts([alert(1, "s1")])
    (only,) = claim(store)
    assert only.secrets == ["whsec_bmV3", SECRET]
    store.release_leases("A")
    (later,) = claim(store, now=NOW + timedelta(days=2))
    assert later.secrets == ["whsec_bmV3"]


def test_finish_applies_only_the_owners_live_leases(store: Store) -> None:
    """Each status is stored with its attempts, retry time and error; other owners' alerts are untouched."""
    store.add_subscription(sub("s1"))
    store.add_subscription(sub("s2"))
    store.add_alerts([alert(n, "s1") for n in range(3)] + [alert(9, "s2")])
    mine = claim(store, subs=1)
    theirs = claim(store, "B")
    retry = NOW + timedelta(minutes=5)
    outcomes = [
        AttemptOutcome("msg_s1_0", "delivered", 1, None, "ignored on delivery", True),
        AttemptOutcome("msg_s1_1", "pending", 1, retry, "HTTP 503", False),
        AttemptOutcome("msg_s1_2", "failed", 1, None, "HTTP 410", False),
        AttemptOutcome("msg_s2_9", "delivered", 1, None, None, True),  # B's lease
        AttemptOutcome("msg_s1_0", "failed", 1, None, "again", False),  # no longer leased
        AttemptOutcome("msg_nope", "failed", 1, None, "x", False),
    ]
    assert ids(mine) == ["msg_s1_0", "msg_s1_1", "msg_s1_2"] and ids(theirs) == ["msg_s2_9"]
    assert store.finish_attempts("A", outcomes, now=NOW) == 3
    done, waiting, dead = (store.get_alert(f"msg_s1_{n}") for n in range(3))
    assert (done.status, done.delivered_at, done.last_error) == ("delivered", NOW, None)
    assert (waiting.status, waiting.next_attempt_at, waiting.last_error) == ("pending", retry, "HTTP 503")
    assert (dead.status, dead.last_error, dead.delivered_at) == ("failed", "HTTP 410", None)
    assert store.get_alert("msg_s2_9").status == "pending"
    assert store.finish_attempts("B", delivered(theirs), now=NOW) == 1
    assert ids(claim(store, "C", now=retry)) == ["msg_s1_1"]  # its lease is gone, its retry due
    with pytest.raises(ValueError, match="unknown alert status"):
        store.finish_attempts("C", [AttemptOutcome("msg_s1_1", "sent", 2, None, None, True)], now=NOW)


def test_finish_updates_subscription_health(store: Store) -> None:
    """A failure starts (or keeps) failing_since; an acceptance clears it; None leaves it alone;
    outcomes of one call count in their order."""
    store.add_subscription(sub("s1"))
    store.add_alerts([alert(n, "s1") for n in range(8)])

    def run(at: datetime, *oks: bool | None) -> Subscription:
        claims = claim(store, now=at, per=len(oks))
        outcomes = [
            AttemptOutcome(c.alert.id, "delivered" if ok else "pending", 1, None, None, ok)
            for c, ok in zip(claims, oks, strict=True)
        ]
        store.finish_attempts("A", outcomes, now=at)
        return store.get_subscription("s1")

    t = [NOW + timedelta(minutes=m) for m in range(6)]
    assert run(t[0], False).failing_since == t[0]
    assert run(t[1], False, None).failing_since == t[0]
    healthy = run(t[2], True)
    assert healthy.failing_since is None and healthy.last_success_at == t[2]
    assert run(t[3], True, False).failing_since == t[3]
    after = run(t[4], False, True)
    assert after.failing_since is None and after.last_success_at == t[4]


def test_expired_lease_is_claimed_again_and_the_old_owner_loses_it(store: Store) -> None:
    """A sender that died keeps nothing: after lease_until the alert is claimable, its attempt counted."""
    store.add_subscription(sub("s1"))
    store.add_alerts([alert(1, "s1")])
    store.claim_alerts(
        "A", now=NOW, lease_until=NOW + timedelta(seconds=10), subscriptions=1, per_subscription=1
    )
    assert claim(store, "B", now=NOW + timedelta(seconds=9)) == []
    (again,) = claim(store, "B", now=NOW + timedelta(seconds=10))  # leased while lease_until > now
    assert again.alert.attempts == 2
    assert store.finish_attempts("A", delivered([again]), now=NOW) == 0
    assert store.finish_attempts("B", delivered([again]), now=NOW) == 1


def test_release_leases_gives_back_unstarted_attempts(store: Store) -> None:
    store.add_subscription(sub("s1"))
    store.add_subscription(sub("s2"))
    store.add_alerts([alert(1, "s1"), alert(2, "s1"), alert(3, "s2")])
    mine = claim(store, subs=1)
    theirs = claim(store, "B")
    assert store.release_leases("A") == 2 and store.release_leases("A") == 0
    assert [store.get_alert(i).attempts for i in ids(mine)] == [0, 0]
    assert store.get_alert(ids(theirs)[0]).attempts == 1
    assert ids(claim(store, "C")) == ids(mine)


def test_receivers_upsert_and_list(store: Store) -> None:
    opened = ReceiverState("https://b.example:443", "open", 5, NOW + timedelta(minutes=1), "HTTP 500", NOW)
    store.save_receiver(opened)
    store.save_receiver(ReceiverState("http://a.example:80", "half_open", 1, None, None, NOW))
    assert store.get_receivers() == [
        ReceiverState("http://a.example:80", "half_open", 1, None, None, NOW),
        opened,
    ]
    closed = ReceiverState("https://b.example:443", "closed", 0, None, None)
    store.save_receiver(closed)
    stored = store.get_receivers()[1]
    assert (stored.state, stored.failures, stored.open_until, stored.last_error) == ("closed", 0, None, None)
    assert stored.updated_at is not None and stored.updated_at > NOW


def test_delivery_stats(store: Store) -> None:
    """Due, in flight, the oldest due time, held, failed and open circuits, at the given time."""
    store.add_subscription(sub("s1"))
    store.add_subscription(sub("s2"))
    store.add_alerts(
        [
            alert(1, "s1"),  # due since it was created
            alert(2, "s1", due=NOW - timedelta(hours=2)),  # a retry due for longest
            alert(3, "s1", due=NOW + timedelta(minutes=1)),
            alert(4, "s1", status="held"),
            alert(5, "s1", status="failed"),
            alert(6, "s1", status="delivered"),
            alert(7, "s2"),
            alert(8, "s2"),
        ]
    )
    assert ids(claim(store, subs=1, per=2)) == ["msg_s1_1", "msg_s1_2"]
    store.save_receiver(ReceiverState("https://x.example:443", "open", 3, NOW + timedelta(seconds=1), None))
    store.save_receiver(ReceiverState("https://y.example:443", "open", 3, NOW, None))
    stats = store.delivery_stats(NOW)
    assert (stats.due, stats.in_flight, stats.held, stats.failed, stats.open_circuits) == (2, 2, 1, 1, 1)
    assert stats.oldest_due_at == alert(7, "s2").created_at
    later = store.delivery_stats(NOW + timedelta(minutes=2))
    assert (later.due, later.in_flight, later.open_circuits) == (5, 0, 0)  # leases expired, 3 due too
    assert later.oldest_due_at == NOW - timedelta(hours=2)
    store.release_leases("A")
    assert store.delivery_stats(NOW).oldest_due_at == NOW - timedelta(hours=2)


def test_retry_failed_alert_sets_attempts_and_is_claimable(store: Store) -> None:
    store.add_subscription(sub("s1"))
    store.add_alerts([alert(1, "s1")])
    (first,) = claim(store)
    store.finish_attempts(
        "A", [AttemptOutcome(first.alert.id, "failed", 8, None, "HTTP 500", False)], now=NOW
    )
    replayed = store.retry_failed_alert(first.alert.id, attempts=7, now=NOW)
    assert replayed is not None and (replayed.status, replayed.attempts) == ("pending", 7)
    (again,) = claim(store, "B")
    assert again.alert.attempts == 8


def test_cut_digest_takes_the_oldest_held_up_to_max_members(store: Store) -> None:
    """The rest stay held for the next window, which takes them first."""
    store.add_subscription(sub("s1"))
    store.add_alerts([alert(n, "s1", status="held") for n in range(5)])

    def digest(n: int) -> Alert:
        return Alert(
            id=f"dg_{n}", subscription_id="s1", story_id=f"digest:{n}", article_id="", matched_terms=[]
        )

    cut = store.cut_digest(digest(1), before=NOW, max_members=3)
    assert cut is not None and cut.status == "pending" and cut.created_at is not None
    assert [a.id for a in store.digest_members("dg_1")] == [f"msg_s1_{n}" for n in range(3)]
    assert store.cut_digest(digest(1), before=NOW, max_members=3) is None  # the same window again
    assert [a.id for a in store.subscription_alerts("s1", "held")] == ["msg_s1_3", "msg_s1_4"]
    assert store.cut_digest(digest(2), before=NOW, max_members=3) is not None
    assert [a.id for a in store.digest_members("dg_2")] == ["msg_s1_3", "msg_s1_4"]
    assert store.cut_digest(digest(3), before=NOW, max_members=3) is None  # nothing held
    with pytest.raises(ValueError):
        store.cut_digest(digest(4), before=NOW, max_members=0)


def _connection(store: Store) -> SQLiteStore | PostgresStore:
    """Another store object on the same database: its own connection."""
    if isinstance(store, SQLiteStore):
        return SQLiteStore(store.path)
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.url)


def _shared_subscriptions(db: SQLiteStore | PostgresStore, now: datetime) -> list[str]:
    """Subscriptions with live leases of more than one owner right now (must never happen)."""
    with db._read() as cur:
        cur.execute(
            "SELECT subscription_id FROM alerts WHERE status = 'pending' AND lease_until > ? "
            "GROUP BY subscription_id HAVING count(DISTINCT lease_owner) > 1",
            (db._ts(now),),
        )
        return [r[0] for r in cur.fetchall()]


def test_concurrent_senders_never_share_an_alert_or_a_subscription(store: Store) -> None:
    """Four connections claim one alert of one subscription at a time and finish it a moment later:
    every alert is claimed exactly once, and no subscription ever has two owners' leases at once."""
    subs, per_sub, senders = 3, 30, 4
    for s in range(subs):
        store.add_subscription(sub(f"s{s}"))
        store.add_alerts([alert(n, f"s{s}") for n in range(per_sub)])
    dbs = [_connection(store) for _ in range(senders)]
    claimed: list[str] = []
    shared: list[str] = []
    guard = threading.Lock()

    def sender(owner: str, db: SQLiteStore | PostgresStore) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = utcnow()
            claims = db.claim_alerts(
                owner, now=now, lease_until=now + timedelta(seconds=60), subscriptions=1, per_subscription=1
            )
            if not claims and db.delivery_stats(now).due + db.delivery_stats(now).in_flight == 0:
                return
            time.sleep(0.002)
            found = _shared_subscriptions(db, utcnow())
            with guard:
                claimed.extend(ids(claims))
                shared.extend(found)
            db.finish_attempts(owner, delivered(claims), now=utcnow())

    threads = [threading.Thread(target=sender, args=(f"sender-{n}", db)) for n, db in enumerate(dbs)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for db in dbs:
            db.close()
    assert shared == []
    assert sorted(claimed) == sorted(f"msg_s{s}_{n}" for s in range(subs) for n in range(per_sub))
    assert all(a.status == "delivered" and a.attempts == 1 for a in store.list_alerts(limit=1000))
