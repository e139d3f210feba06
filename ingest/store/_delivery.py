"""Delivery bookkeeping for both SQL backends: subscription health, digests, per-subscription alerts.

A mixin of `PagedSQLStore` (see `_pages.py`), kept apart so each module stays
small. It relies on the backend hooks `_read`, `_write`, `_ts`, `_dt` and on
`SQLStore`'s row conversion.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ingest.errors import NotFound
from ingest.models import Alert, Subscription, utcnow
from ingest.store._sql import ALERT_COLS, ALERT_WIDTH
from ingest.store._subscriptions import SUB_COLS

if TYPE_CHECKING:
    from ingest.store._sql import Cursor

_DELIVERY_SQL = (
    "SELECT "
    + ", ".join(
        [f"a.{c.strip()}" for c in ALERT_COLS.split(",")] + [f"s.{c.strip()}" for c in SUB_COLS.split(",")]
    )
    + ", s.previous_secret, s.previous_secret_expires_at "
    "FROM alerts a JOIN subscriptions s ON s.id = a.subscription_id WHERE a.id = ?"
)


class DeliveryMixin:
    """What the delivery job, the digest cutter and the `subs`/`alerts` commands need."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Cursor]: ...
        def _write(self) -> AbstractContextManager[Cursor]: ...
        def _ts(self, dt: datetime | None) -> Any: ...
        def _dt(self, value: Any) -> datetime | None: ...
        def _alert(self, r: Sequence[Any]) -> Alert: ...
        def _sub(self, r: Sequence[Any]) -> Subscription: ...

    def record_subscription_delivery(
        self, sub_id: str, *, ok: bool, at: datetime | None = None
    ) -> datetime | None:
        """Note a delivery outcome; return `failing_since` afterwards (None after a success).

        Not a subscription change for the matcher: the version is not bumped.
        """
        at = at or utcnow()
        with self._write() as cur:
            if ok:
                cur.execute(
                    "UPDATE subscriptions SET failing_since = NULL, last_success_at = ? WHERE id = ?",
                    (self._ts(at), sub_id),
                )
            else:
                cur.execute(
                    "UPDATE subscriptions SET failing_since = coalesce(failing_since, ?) WHERE id = ?",
                    (self._ts(at), sub_id),
                )
            if cur.rowcount == 0:
                raise NotFound(f"no subscription with id {sub_id!r}")
            cur.execute("SELECT failing_since FROM subscriptions WHERE id = ?", (sub_id,))
            return self._dt(cur.fetchone()[0])

    def get_delivery(
        self, alert_id: str, *, now: datetime | None = None
    ) -> tuple[Alert, Subscription, list[str]]:
        """One query instead of three on the hot path (a PostgreSQL round trip each)."""
        with self._read() as cur:
            cur.execute(_DELIVERY_SQL, (alert_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no alert with id {alert_id!r} (or its subscription was removed)")
        sub = self._sub(row[ALERT_WIDTH:-2])
        secrets_ = signing_secrets(sub.secret, row[-2], self._dt(row[-1]), now)
        return self._alert(row[:ALERT_WIDTH]), sub, secrets_

    def record_delivered(self, alert_id: str, sub_id: str, *, attempts: int) -> None:
        """One commit instead of two on the hot path (`record_attempt` + `record_subscription_delivery`)."""
        at = self._ts(utcnow())
        with self._write() as cur:
            cur.execute(
                "UPDATE alerts SET status = 'delivered', attempts = ?, next_attempt_at = NULL, "
                "last_error = NULL, delivered_at = coalesce(delivered_at, ?) WHERE id = ?",
                (attempts, at, alert_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no alert with id {alert_id!r}")
            cur.execute(
                "UPDATE subscriptions SET failing_since = NULL, last_success_at = ? WHERE id = ?",
                (at, sub_id),
            )

    def subscription_alerts(self, sub_id: str, status: str, *, limit: int = 10_000) -> list[Alert]:
        """One subscription's alerts in one status, oldest first."""
        with self._read() as cur:
            cur.execute(
                f"SELECT {ALERT_COLS} FROM alerts WHERE subscription_id = ? AND status = ? "
                "ORDER BY created_at, id LIMIT ?",
                (sub_id, status, limit),
            )
            return [self._alert(r) for r in cur.fetchall()]

    def held_subscription_ids(self) -> list[str]:
        """Subscriptions with alerts held for a digest."""
        with self._read() as cur:
            cur.execute(
                "SELECT DISTINCT subscription_id FROM alerts WHERE status = 'held' ORDER BY subscription_id"
            )
            return [r[0] for r in cur.fetchall()]

    def cut_digest(self, digest: Alert, *, before: datetime) -> Alert | None:
        """Make `digest` the carrier of its subscription's alerts held since before `before`.

        One transaction: the digest row is inserted (unique per subscription and
        window, so cutting twice does nothing) and the held alerts become
        `digested` with its id. None when nothing is held or the digest exists.
        """
        now = utcnow()
        with self._write() as cur:
            cur.execute(
                "SELECT count(*) FROM alerts WHERE subscription_id = ? AND status = 'held' "
                "AND created_at < ?",
                (digest.subscription_id, self._ts(before)),
            )
            if int(cur.fetchone()[0]) == 0:
                return None
            cur.execute(
                f"INSERT INTO alerts ({ALERT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING id",
                (
                    digest.id,
                    digest.subscription_id,
                    digest.story_id,
                    digest.article_id,
                    json.dumps(digest.matched_terms),
                    "pending",
                    0,
                    None,
                    None,
                    self._ts(now),
                    None,
                    None,
                ),
            )
            if cur.fetchone() is None:
                return None
            cur.execute(
                "UPDATE alerts SET status = 'digested', digest_id = ? WHERE subscription_id = ? "
                "AND status = 'held' AND created_at < ?",
                (digest.id, digest.subscription_id, self._ts(before)),
            )
        return Alert(
            id=digest.id,
            subscription_id=digest.subscription_id,
            story_id=digest.story_id,
            article_id=digest.article_id,
            matched_terms=list(digest.matched_terms),
            created_at=now,
        )

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
        with self._read() as cur:
            cur.execute(
                f"SELECT {ALERT_COLS} FROM alerts WHERE digest_id = ? ORDER BY created_at, id", (digest_id,)
            )
            return [self._alert(r) for r in cur.fetchall()]


def signing_secrets(
    secret: str, previous: str | None, previous_expires: datetime | None, now: datetime | None = None
) -> list[str]:
    """The current secret, then the previous one while its grace period lasts."""
    in_grace = previous_expires is not None and previous_expires > (now or utcnow())
    if previous and previous != secret and in_grace:
        return [secret, previous]
    return [secret]
