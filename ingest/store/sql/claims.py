"""Claiming due alerts, the one outbox operation written per backend.

Both pick the same alerts: for up to `subscriptions` eligible subscriptions (`ELIGIBLE`), least
recently claimed first, the oldest `per_subscription` due, unleased alerts in (created_at, id)
order; each gets the lease and one more attempt, its subscription `last_claimed_at = now`.

PostgreSQL does it in one statement. Row locks (`FOR UPDATE ... SKIP LOCKED`) keep two senders off
the same subscriptions and alerts while both claim; a subscription whose row changed since the
statement's snapshot (another sender claimed it and committed in between: its leases are
invisible to this snapshot) fails the `xmin` comparison when re-checked on locking, and is
skipped. SQLite runs the same selection as a few statements inside BEGIN IMMEDIATE, which
already excludes every other writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.store.sql.core import Cursor, chunks, marks
from ingest.store.sql.outbox import ALERT_COLS, DUE
from ingest.store.sql.subscriptions import SUB_COLS

# A subscription `s` that may be claimed at `?` (three times). Only pending alerts ever carry a lease
# (claims take pending ones; every status change clears it), so "leased" needs no status test, and
# once no alert of `s` is leased, "due" needs no lease test.
ELIGIBLE = (
    "s.status <> 'paused' "
    "AND NOT EXISTS (SELECT 1 FROM receivers r WHERE r.origin = s.origin AND r.open_until > ?) "
    "AND NOT EXISTS (SELECT 1 FROM alerts l WHERE l.subscription_id = s.id AND l.lease_until > ?) "
    "AND EXISTS (SELECT 1 FROM alerts d WHERE d.subscription_id = s.id AND d.status = 'pending' "
    "AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?))"
)
SUB_RETURNING = f"{SUB_COLS}, previous_secret, previous_secret_expires_at"


def qualified(columns: str, alias: str) -> str:
    """`a.x, a.y` from `x, y`."""
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


def fairest_first(alias: str) -> str:
    """Least recently claimed first, never claimed before all (NULLS FIRST in both dialects)."""
    return f"{alias}.last_claimed_at IS NOT NULL, {alias}.last_claimed_at, {alias}.id"


POSTGRES_CLAIM = f"""
WITH cand AS (
    SELECT s.id, s.last_claimed_at, s.xmin AS version FROM subscriptions s WHERE {ELIGIBLE}
), subs AS (
    SELECT s.id, c.last_claimed_at FROM cand c JOIN subscriptions s ON s.id = c.id AND s.xmin = c.version
    ORDER BY {fairest_first("c")} LIMIT ?
    FOR UPDATE OF s SKIP LOCKED
), picked AS (
    SELECT p.id, s.last_claimed_at FROM subs s CROSS JOIN LATERAL (
        SELECT a.id FROM alerts a WHERE a.subscription_id = s.id AND a.status = 'pending' AND {DUE}
        ORDER BY a.created_at, a.id LIMIT ? FOR UPDATE SKIP LOCKED) p
), claimed AS (
    UPDATE alerts a SET lease_owner = ?, lease_until = ?, attempts = a.attempts + 1 FROM picked p
    WHERE a.id = p.id RETURNING {qualified(ALERT_COLS, "a")}, p.last_claimed_at AS sub_claimed_at
), touched AS (
    UPDATE subscriptions s SET last_claimed_at = ? WHERE s.id IN (SELECT subscription_id FROM claimed)
    RETURNING {qualified(SUB_RETURNING, "s")}
)
SELECT {qualified(ALERT_COLS, "c")}, {qualified(SUB_RETURNING, "t")}
FROM claimed c JOIN touched t ON t.id = c.subscription_id
ORDER BY c.sub_claimed_at IS NOT NULL, c.sub_claimed_at, c.subscription_id, c.created_at, c.id
"""


def postgres_params(
    owner: str, now: Any, lease_until: Any, subscriptions: int, per_subscription: int
) -> tuple[Any, ...]:
    """`POSTGRES_CLAIM`'s parameters, in placeholder order (timestamps as the backend stores them)."""
    return (now, now, now, subscriptions, now, now, per_subscription, owner, lease_until, now)


def claim_in_transaction(
    cur: Cursor, owner: str, now: Any, lease_until: Any, subscriptions: int, per_subscription: int
) -> list[Sequence[Any]]:
    """The claim as statements inside the caller's write transaction (SQLite: BEGIN IMMEDIATE)."""
    cur.execute(
        f"SELECT s.id FROM subscriptions s WHERE {ELIGIBLE} ORDER BY {fairest_first('s')} LIMIT ?",
        (now, now, now, subscriptions),
    )
    alert_ids: list[str] = []
    for (sub_id,) in cur.fetchall():
        cur.execute(
            f"SELECT id FROM alerts WHERE subscription_id = ? AND status = 'pending' AND {DUE} "
            "ORDER BY created_at, id LIMIT ?",
            (sub_id, now, now, per_subscription),
        )
        alert_ids += [r[0] for r in cur.fetchall()]
    alerts: dict[str, Sequence[Any]] = {}
    for part in chunks(alert_ids):
        cur.execute(
            f"UPDATE alerts SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 "
            f"WHERE id IN ({marks(len(part))}) RETURNING {ALERT_COLS}",
            (owner, lease_until, *part),
        )
        alerts.update((r[0], tuple(r)) for r in cur.fetchall())
    sub_ids = list(dict.fromkeys(alerts[a][1] for a in alert_ids))
    subs: dict[str, Sequence[Any]] = {}
    for part in chunks(sub_ids):
        cur.execute(
            f"UPDATE subscriptions SET last_claimed_at = ? WHERE id IN ({marks(len(part))}) "
            f"RETURNING {SUB_RETURNING}",
            (now, *part),
        )
        subs.update((r[0], tuple(r)) for r in cur.fetchall())
    return [(*alerts[a], *subs[alerts[a][1]]) for a in alert_ids]
