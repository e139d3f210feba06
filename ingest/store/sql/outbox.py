"""The outbox in SQL (`OutboxStore`): alerts, digests, leases and receivers' circuit states.

Claiming is the one part written per backend (`_claim_rows`, see `claims.py`): PostgreSQL in one
statement with row locks, SQLite in one BEGIN IMMEDIATE transaction. Everything else is shared.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ingest.errors import NotFound
from ingest.models import Alert, Subscription, utcnow
from ingest.store.outbox import ATTEMPT_STATUSES, AttemptOutcome, Claim, DeliveryStats, ReceiverState
from ingest.store.sql.core import Cursor, SQLCore, chunks, marks
from ingest.store.sql.subscriptions import SUB_WIDTH, signing_secrets, subscription_from_row

ALERT_COLS = (
    "id, subscription_id, story_id, article_id, matched_terms, status, attempts, "
    "next_attempt_at, last_error, created_at, delivered_at, digest_id"
)
ALERT_WIDTH = 12
RECEIVER_COLS = "origin, state, failures, open_until, last_error, updated_at"
# Due and not leased at `?` (twice): what a claim may take and what `delivery_stats` counts as due.
DUE = "(next_attempt_at IS NULL OR next_attempt_at <= ?) AND (lease_until IS NULL OR lease_until <= ?)"


class SQLOutbox(SQLCore):
    """The alerts and receivers tables."""

    @abstractmethod
    def _claim_rows(
        self, owner: str, now: datetime, lease_until: datetime, subscriptions: int, per_subscription: int
    ) -> list[Sequence[Any]]:
        """Claimed rows in claim order: `ALERT_COLS`, `SUB_COLS`, previous secret and its expiry."""

    def _alert(self, r: Sequence[Any]) -> Alert:
        return Alert(
            id=r[0],
            subscription_id=r[1],
            story_id=r[2],
            article_id=r[3],
            matched_terms=list(json.loads(r[4])),
            status=r[5],
            attempts=int(r[6]),
            next_attempt_at=self._dt(r[7]),
            last_error=r[8],
            created_at=self._dt(r[9]),
            delivered_at=self._dt(r[10]),
            digest_id=r[11],
        )

    def _alert_values(self, a: Alert, now: datetime) -> list[Any]:
        return [
            a.id,
            a.subscription_id,
            a.story_id,
            a.article_id,
            json.dumps(list(a.matched_terms)),
            a.status,
            a.attempts,
            self._ts(a.next_attempt_at),
            a.last_error,
            self._ts(a.created_at or now),
            self._ts(a.delivered_at),
            a.digest_id,
        ]

    def _alerts_where(self, where: str, params: Sequence[Any], tail: str = "") -> list[Alert]:
        with self._read() as cur:
            cur.execute(f"SELECT {ALERT_COLS} FROM alerts WHERE {where} {tail}", params)
            return [self._alert(r) for r in cur.fetchall()]

    def add_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Insert; one alert per (subscription_id, story_id). Return only the new ones, in input order."""
        if not alerts:
            return []
        now = utcnow()
        inserted: set[str] = set()
        with self._write() as cur:
            for part in chunks(alerts):
                params = [v for a in part for v in self._alert_values(a, now)]
                cur.execute(
                    f"INSERT INTO alerts ({ALERT_COLS}) VALUES {marks(len(part), ALERT_WIDTH)} "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    params,
                )
                inserted.update(r[0] for r in cur.fetchall())
        new: list[Alert] = []
        for alert in alerts:
            if alert.id in inserted:
                inserted.discard(alert.id)
                new.append(alert if alert.created_at else replace(alert, created_at=now))
        return new

    def get_alert(self, alert_id: str) -> Alert:
        found = self._alerts_where("id = ?", (alert_id,))
        if not found:
            raise NotFound(f"no alert with id {alert_id!r}")
        return found[0]

    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[Alert]:
        """Newest first, optionally only one status."""
        return self.list_alerts_page(limit=limit, status=status)

    def list_alerts_page(
        self,
        *,
        limit: int,
        status: str | None = None,
        subscription_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[Alert]:
        """Newest first (created_at, id), optionally one status and/or one subscription."""
        terms: list[str] = []
        params: list[Any] = []
        for column, value in (("status", status), ("subscription_id", subscription_id)):
            if value is not None:
                terms.append(f"{column} = ?")
                params.append(value)
        if after is not None:
            terms.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params += [self._ts(after[0]), self._ts(after[0]), after[1]]
        where = " AND ".join(terms) or "1 = 1"
        return self._alerts_where(where, (*params, limit), "ORDER BY created_at DESC, id DESC LIMIT ?")

    def subscription_alerts(self, sub_id: str, status: str, *, limit: int = 10_000) -> list[Alert]:
        """One subscription's alerts in one status, oldest first."""
        return self._alerts_where(
            "subscription_id = ? AND status = ?", (sub_id, status, limit), "ORDER BY created_at, id LIMIT ?"
        )

    def retry_failed_alert(
        self, alert_id: str, *, attempts: int, now: datetime | None = None
    ) -> Alert | None:
        """Set a failed alert back to pending with `attempts`, due `now`, unleased; None if it is not failed.

        The caller gives the attempts count the replay starts from (one short of the schedule's
        end gives it one more attempt before it is dead-lettered again).
        """
        with self._write() as cur:
            cur.execute(
                "UPDATE alerts SET status = 'pending', next_attempt_at = ?, attempts = ?, "
                "lease_owner = NULL, lease_until = NULL WHERE id = ? AND status = 'failed'",
                (self._ts(now or utcnow()), attempts, alert_id),
            )
            changed = cur.rowcount
        alert = self.get_alert(alert_id)  # NotFound if it does not exist
        return alert if changed else None

    # -- the sender ----------------------------------------------------------------
    def claim_alerts(
        self, owner: str, *, now: datetime, lease_until: datetime, subscriptions: int, per_subscription: int
    ) -> list[Claim]:
        """Lease the oldest due alerts of the least recently claimed eligible subscriptions.

        Eligible: not paused, no open circuit on its origin, none of its alerts leased now, and
        at least one alert due. Disabled subscriptions' alerts are claimed too (the sender
        dead-letters them). Claims come grouped by subscription, each group in alert order.
        """
        rows = self._claim_rows(owner, now, lease_until, subscriptions, per_subscription)
        claims: list[Claim] = []
        subs: dict[str, Subscription] = {}
        secrets: dict[str, list[str]] = {}
        for r in rows:
            sub_id = r[ALERT_WIDTH]
            if sub_id not in subs:
                subs[sub_id] = subscription_from_row(r[ALERT_WIDTH : ALERT_WIDTH + SUB_WIDTH], self._dt)
                secrets[sub_id] = signing_secrets(subs[sub_id].secret, r[-2], self._dt(r[-1]), now)
            claims.append(Claim(self._alert(r[:ALERT_WIDTH]), subs[sub_id], secrets[sub_id]))
        return claims

    def finish_attempts(self, owner: str, outcomes: Sequence[AttemptOutcome], *, now: datetime) -> int:
        """In one transaction: apply each outcome whose alert `owner` still leases; return how many.

        The lease is cleared; `delivered_at` is set once, on delivery (which also clears
        `last_error`); the subscriptions' health follows `receiver_ok` in the outcomes' order.
        """
        unknown = {o.status for o in outcomes} - ATTEMPT_STATUSES
        if unknown:
            raise ValueError(f"unknown alert status {sorted(unknown)}: use one of {sorted(ATTEMPT_STATUSES)}")
        if not outcomes:
            return 0
        rows = [
            (
                o.status,
                o.attempts,
                self._ts(o.next_attempt_at),
                None if o.status == "delivered" else o.error,
                self._ts(now) if o.status == "delivered" else None,
                o.alert_id,
                owner,
            )
            for o in outcomes
        ]
        with self._write() as cur:
            found = self._returning_each(
                cur,
                "UPDATE alerts SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, "
                "delivered_at = coalesce(delivered_at, ?), lease_owner = NULL, lease_until = NULL "
                "WHERE id = ? AND lease_owner = ? RETURNING subscription_id",
                rows,
            )
            applied = [(row[0], o.receiver_ok) for row, o in zip(found, outcomes, strict=True) if row]
            self._record_health(cur, applied, now)
        return len(applied)

    def _record_health(self, cur: Cursor, outcomes: Sequence[tuple[str, bool | None]], now: datetime) -> None:
        """Subscription health as if the outcomes were applied one by one at `now`."""
        accepted = list(dict.fromkeys(sub_id for sub_id, ok in outcomes if ok))
        last: dict[str, bool] = {sub_id: ok for sub_id, ok in outcomes if ok is not None}
        failing = [sub_id for sub_id, ok in last.items() if not ok]
        for ids, sets in (
            (accepted, "failing_since = NULL, last_success_at = ?"),
            (failing, "failing_since = coalesce(failing_since, ?)"),
        ):
            for part in chunks(ids):
                cur.execute(
                    f"UPDATE subscriptions SET {sets} WHERE id IN ({marks(len(part))})",
                    (self._ts(now), *part),
                )

    def release_leases(self, owner: str) -> int:
        """Clear `owner`'s leases and take back their attempts (they never started); return how many."""
        with self._write() as cur:
            cur.execute(
                "UPDATE alerts SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1 "
                "WHERE lease_owner = ?",
                (owner,),
            )
            return cur.rowcount

    def save_receiver(self, state: ReceiverState) -> None:
        """Insert or replace the circuit state of `state.origin` (updated now unless it says when)."""
        with self._write() as cur:
            cur.execute(
                f"INSERT INTO receivers ({RECEIVER_COLS}) VALUES ({marks(6)}) ON CONFLICT (origin) "
                "DO UPDATE SET state = excluded.state, failures = excluded.failures, "
                "open_until = excluded.open_until, last_error = excluded.last_error, "
                "updated_at = excluded.updated_at",
                (
                    state.origin,
                    state.state,
                    state.failures,
                    self._ts(state.open_until),
                    state.last_error,
                    self._ts(state.updated_at or utcnow()),
                ),
            )

    def get_receivers(self) -> list[ReceiverState]:
        """Every receiver origin with a stored circuit state, by origin."""
        with self._read() as cur:
            cur.execute(f"SELECT {RECEIVER_COLS} FROM receivers ORDER BY origin")
            return [
                ReceiverState(r[0], r[1], int(r[2]), self._dt(r[3]), r[4], self._dt(r[5]))
                for r in cur.fetchall()
            ]

    def delivery_stats(self, now: datetime) -> DeliveryStats:
        """The outbox's figures at `now`, in one query over the partial and status indexes."""
        ts = self._ts(now)
        with self._read() as cur:
            cur.execute(
                "SELECT due.n, due.oldest, "
                "(SELECT count(*) FROM alerts WHERE lease_until > ?), "  # only pending alerts are leased
                "(SELECT count(*) FROM alerts WHERE status = 'held'), "
                "(SELECT count(*) FROM alerts WHERE status = 'failed'), "
                "(SELECT count(*) FROM receivers WHERE open_until > ?) "
                "FROM (SELECT count(*) AS n, min(coalesce(next_attempt_at, created_at)) AS oldest "
                f"FROM alerts WHERE status = 'pending' AND {DUE}) due",
                (ts, ts, ts, ts),
            )
            r = cur.fetchone()
        return DeliveryStats(int(r[0]), int(r[2]), self._dt(r[1]), int(r[3]), int(r[4]), int(r[5]))

    # -- digests -------------------------------------------------------------
    def held_subscription_ids(self) -> list[str]:
        """Subscriptions with alerts held for a digest."""
        with self._read() as cur:
            cur.execute(
                "SELECT DISTINCT subscription_id FROM alerts WHERE status = 'held' ORDER BY subscription_id"
            )
            return [r[0] for r in cur.fetchall()]

    def cut_digest(self, digest: Alert, *, before: datetime, max_members: int) -> Alert | None:
        """Make `digest` the carrier of its subscription's oldest `max_members` alerts held before `before`.

        One transaction: the digest row is inserted (unique per subscription and window, so
        cutting twice does nothing) and those held alerts become `digested` with its id; the
        rest stay held for the next window. None when nothing is held or the digest exists.
        """
        if max_members < 1:
            raise ValueError(f"max_members must be at least 1, not {max_members}")
        now = utcnow()
        held = "SELECT id FROM alerts WHERE subscription_id = ? AND status = 'held' AND created_at < ?"
        window = (digest.subscription_id, self._ts(before))
        stored = Alert(
            id=digest.id,
            subscription_id=digest.subscription_id,
            story_id=digest.story_id,
            article_id=digest.article_id,
            matched_terms=list(digest.matched_terms),
            created_at=now,
        )
        with self._write() as cur:
            cur.execute(f"{held} LIMIT 1", window)
            if cur.fetchone() is None:
                return None
            cur.execute(
                f"INSERT INTO alerts ({ALERT_COLS}) VALUES ({marks(ALERT_WIDTH)}) "
                "ON CONFLICT DO NOTHING RETURNING id",
                self._alert_values(stored, now),
            )
            if cur.fetchone() is None:
                return None
            cur.execute(
                f"UPDATE alerts SET status = 'digested', digest_id = ? "
                f"WHERE id IN ({held} ORDER BY created_at, id LIMIT ?)",
                (digest.id, *window, max_members),
            )
        return stored

    def release_held(self, sub_id: str) -> list[Alert]:
        """Held alerts of a subscription no longer in digest mode, back to pending (due now)."""
        with self._write() as cur:
            cur.execute(
                "UPDATE alerts SET status = 'pending', next_attempt_at = ? "
                "WHERE subscription_id = ? AND status = 'held'",
                (self._ts(utcnow()), sub_id),
            )
        return self.subscription_alerts(sub_id, "pending")

    def digest_members(self, digest_id: str) -> list[Alert]:
        """The alerts a digest carries, oldest first."""
        return self._alerts_where("digest_id = ?", (digest_id,), "ORDER BY created_at, id")

    # -- seeding and bookkeeping that tests still use ----------------------------------
    def record_attempt(
        self,
        alert_id: str,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None,
        error: str | None,
    ) -> None:
        """Set an alert's delivery state, lease cleared; `delivered_at` is set once it is `delivered`."""
        delivered_at = utcnow() if status == "delivered" else None
        with self._write() as cur:
            cur.execute(
                "UPDATE alerts SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, "
                "delivered_at = coalesce(delivered_at, ?), lease_owner = NULL, lease_until = NULL "
                "WHERE id = ?",
                (status, attempts, self._ts(next_attempt_at), error, self._ts(delivered_at), alert_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no alert with id {alert_id!r}")

    def record_subscription_delivery(
        self, sub_id: str, *, ok: bool, at: datetime | None = None
    ) -> datetime | None:
        """Note a delivery outcome; return `failing_since` afterwards (None after a success)."""
        with self._write() as cur:
            cur.execute("SELECT 1 FROM subscriptions WHERE id = ?", (sub_id,))
            if cur.fetchone() is None:
                raise NotFound(f"no subscription with id {sub_id!r}")
            self._record_health(cur, [(sub_id, ok)], at or utcnow())
            cur.execute("SELECT failing_since FROM subscriptions WHERE id = ?", (sub_id,))
            return self._dt(cur.fetchone()[0])
