"""Subscriptions: the topic queries and their webhooks, for both backends.

A mixin of `SQLStore` (see `_sql.py`). Every change bumps `meta.subscriptions_version`, the key
workers compare to reload their matcher.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ingest.errors import NotFound, StoreError
from ingest.models import Subscription, SubscriptionOptions, utcnow

if TYPE_CHECKING:
    from ingest.store._sql import Cursor

SUB_COLS = (
    "id, name, query, webhook, secret, status, status_reason, created_at, options, failing_since, "
    "last_success_at"
)


class SubscriptionMixin:
    """The subscriptions table."""

    if TYPE_CHECKING:

        def _read(self) -> AbstractContextManager[Cursor]: ...
        def _write(self) -> AbstractContextManager[Cursor]: ...
        def _ts(self, dt: datetime | None) -> Any: ...
        def _dt(self, value: Any) -> datetime | None: ...

    def _sub(self, r: Sequence[Any]) -> Subscription:
        return Subscription(
            id=r[0],
            name=r[1],
            query=r[2],
            webhook=r[3],
            secret=r[4],
            status=r[5],
            status_reason=r[6],
            created_at=self._dt(r[7]),
            options=SubscriptionOptions.from_dict(json.loads(r[8] or "{}")),
            failing_since=self._dt(r[9]),
            last_success_at=self._dt(r[10]),
        )

    def _bump_subscriptions(self, cur: Cursor) -> None:
        cur.execute("UPDATE meta SET value = value + 1 WHERE key = 'subscriptions_version'")

    def add_subscription(self, sub: Subscription) -> Subscription:
        """Insert; an existing id is an error (ids are generated, a clash is a bug or a replay)."""
        stored = sub if sub.created_at else replace(sub, created_at=utcnow())
        with self._write() as cur:
            cur.execute(
                "INSERT INTO subscriptions (id, name, query, webhook, secret, status, status_reason, "
                "created_at, updated_at, options) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING id",
                (
                    stored.id,
                    stored.name,
                    stored.query,
                    stored.webhook,
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
            self._bump_subscriptions(cur)
        return self.get_subscription(sub.id)

    def get_subscription(self, sub_id: str) -> Subscription:
        with self._read() as cur:
            cur.execute(f"SELECT {SUB_COLS} FROM subscriptions WHERE id = ?", (sub_id,))
            row = cur.fetchone()
        if row is None:
            raise NotFound(f"no subscription with id {sub_id!r}")
        return self._sub(row)

    def list_subscriptions(self) -> list[Subscription]:
        with self._read() as cur:
            cur.execute(f"SELECT {SUB_COLS} FROM subscriptions ORDER BY created_at, id")
            return [self._sub(r) for r in cur.fetchall()]

    def _change_subscription(self, sub_id: str, changes: dict[str, Any]) -> None:
        sets = ", ".join(f"{column} = ?" for column in changes)
        with self._write() as cur:
            cur.execute(
                f"UPDATE subscriptions SET {sets}, updated_at = ? WHERE id = ?",
                (*changes.values(), self._ts(utcnow()), sub_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no subscription with id {sub_id!r}")
            self._bump_subscriptions(cur)

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
            self._bump_subscriptions(cur)

    def subscriptions_version(self) -> str:
        """Changes whenever a subscription is added, changed or removed (matcher reload key)."""
        with self._read() as cur:
            cur.execute("SELECT value FROM meta WHERE key = 'subscriptions_version'")
            return str(cur.fetchone()[0])
