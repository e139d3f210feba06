"""Subscriptions in SQL (`SubscriptionStore`): queries, webhooks, signing secrets.

Every change bumps `meta.subscriptions_version`, the key workers compare to reload their
matcher. `origin` (the receiver's scheme, host and port, what circuit breakers count by) is
kept with the webhook on insert and on every webhook change.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ingest.clean.url import origin
from ingest.errors import NotFound, StoreError
from ingest.models import Subscription, SubscriptionOptions, utcnow
from ingest.store.sql.core import Cursor, SQLCore

SUB_COLS = (
    "id, name, query, webhook, secret, status, status_reason, created_at, options, failing_since, "
    "last_success_at"
)
SUB_WIDTH = 11


def receiver_origin(webhook: str) -> str | None:
    """The webhook's origin (`ingest.clean.url.origin`); None for a URL too broken to have one."""
    try:
        return origin(webhook)
    except ValueError:
        return None


def subscription_from_row(r: Sequence[Any], dt: Callable[[Any], datetime | None]) -> Subscription:
    """A `SUB_COLS` row as a Subscription; `dt` is the backend's timestamp conversion."""
    return Subscription(
        id=r[0],
        name=r[1],
        query=r[2],
        webhook=r[3],
        secret=r[4],
        status=r[5],
        status_reason=r[6],
        created_at=dt(r[7]),
        options=SubscriptionOptions.from_dict(json.loads(r[8] or "{}")),
        failing_since=dt(r[9]),
        last_success_at=dt(r[10]),
    )


def signing_secrets(
    secret: str, previous: str | None, previous_expires: datetime | None, now: datetime | None = None
) -> list[str]:
    """The current secret, then the previous one while its grace period lasts."""
    in_grace = previous_expires is not None and previous_expires > (now or utcnow())
    if previous and previous != secret and in_grace:
        return [secret, previous]
    return [secret]


def _bump_version(cur: Cursor) -> None:
    cur.execute("UPDATE meta SET value = value + 1 WHERE key = 'subscriptions_version'")


class SQLSubscriptions(SQLCore):
    """The subscriptions table (and the matcher's version key in `meta`)."""

    def _subs_where(self, where: str, params: Sequence[Any], tail: str = "") -> list[Subscription]:
        with self._read() as cur:
            cur.execute(f"SELECT {SUB_COLS} FROM subscriptions WHERE {where} {tail}", params)
            return [subscription_from_row(r, self._dt) for r in cur.fetchall()]

    def add_subscription(self, sub: Subscription) -> Subscription:
        """Insert; an existing id is an error (ids are generated, a clash is a bug or a replay)."""
        stored = sub if sub.created_at else replace(sub, created_at=utcnow())
        with self._write() as cur:
            cur.execute(
                "INSERT INTO subscriptions (id, name, query, webhook, origin, secret, status, status_reason, "
                "created_at, updated_at, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING id",
                (
                    stored.id,
                    stored.name,
                    stored.query,
                    stored.webhook,
                    receiver_origin(stored.webhook),
                    stored.secret,
                    stored.status,
                    stored.status_reason,
                    self._ts(stored.created_at),
                    self._ts(utcnow()),
                    json.dumps(stored.options.to_dict()),
                ),
            )
            if cur.fetchone() is None:
                raise StoreError(f"a subscription with id {sub.id!r} already exists")
            _bump_version(cur)
        return self.get_subscription(sub.id)

    def get_subscription(self, sub_id: str) -> Subscription:
        found = self._subs_where("id = ?", (sub_id,))
        if not found:
            raise NotFound(f"no subscription with id {sub_id!r}")
        return found[0]

    def list_subscriptions(self) -> list[Subscription]:
        return self._subs_where("1 = 1", (), "ORDER BY created_at, id")

    def list_subscriptions_page(
        self, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Subscription]:
        """Oldest first (created_at, id), only rows strictly after the `after` key."""
        where, params = "1 = 1", []
        if after is not None:
            where = "(created_at > ? OR (created_at = ? AND id > ?))"
            params = [self._ts(after[0]), self._ts(after[0]), after[1]]
        return self._subs_where(where, (*params, limit), "ORDER BY created_at, id LIMIT ?")

    def _change_subscription(self, sub_id: str, changes: dict[str, Any]) -> None:
        sets = ", ".join(f"{column} = ?" for column in changes)
        with self._write() as cur:
            cur.execute(
                f"UPDATE subscriptions SET {sets}, updated_at = ? WHERE id = ?",
                (*changes.values(), self._ts(utcnow()), sub_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no subscription with id {sub_id!r}")
            _bump_version(cur)

    def set_subscription_status(self, sub_id: str, status: str, reason: str | None) -> None:
        """Set the status; back to `active`, the failure clock of the disable rule starts afresh."""
        changes: dict[str, Any] = {"status": status, "status_reason": reason}
        if status == "active":
            changes["failing_since"] = None
        self._change_subscription(sub_id, changes)

    def update_subscription(
        self,
        sub_id: str,
        *,
        name: str | None = None,
        query: str | None = None,
        webhook: str | None = None,
        secret: str | None = None,
        options: SubscriptionOptions | None = None,
    ) -> Subscription:
        """Change the given fields (None: unchanged) and return the subscription as stored."""
        given = {
            "name": name,
            "query": query,
            "webhook": webhook,
            "origin": receiver_origin(webhook) if webhook is not None else None,
            "secret": secret,
            "options": json.dumps(options.to_dict()) if options is not None else None,
        }
        changes = {column: value for column, value in given.items() if value is not None}
        if changes:
            self._change_subscription(sub_id, changes)
        return self.get_subscription(sub_id)

    def remove_subscription(self, sub_id: str) -> None:
        """Remove the subscription and its alerts (pending deliveries would have nowhere to go)."""
        with self._write() as cur:
            cur.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,))
            if cur.rowcount == 0:
                raise NotFound(f"no subscription with id {sub_id!r}")
            _bump_version(cur)

    def subscriptions_version(self) -> str:
        """Changes whenever a subscription is added, changed or removed (matcher reload key)."""
        with self._read() as cur:
            cur.execute("SELECT value FROM meta WHERE key = 'subscriptions_version'")
            return str(cur.fetchone()[0])

    def rotate_subscription_secret(
        self, sub_id: str, secret: str, *, previous_valid_until: datetime
    ) -> Subscription:
        """Make `secret` current; the old one signs too until `previous_valid_until`."""
        with self._write() as cur:
            cur.execute(
                "UPDATE subscriptions SET previous_secret = secret, previous_secret_expires_at = ?, "
                "secret = ?, updated_at = ? WHERE id = ?",
                (self._ts(previous_valid_until), secret, self._ts(utcnow()), sub_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no subscription with id {sub_id!r}")
            _bump_version(cur)
        return self.get_subscription(sub_id)

    def get_signing_secrets(self, sub_id: str, *, now: datetime | None = None) -> list[str]:
        """The secrets an alert is signed with: the current one, then a previous one still in grace."""
        with self._read() as cur:
            cur.execute(
                "SELECT secret, previous_secret, previous_secret_expires_at FROM subscriptions WHERE id = ?",
                (sub_id,),
            )
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no subscription with id {sub_id!r}")
        return signing_secrets(row[0], row[1], self._dt(row[2]), now)
