"""The subscriptions aggregate: topic queries, their webhooks and signing secrets.

Every change bumps a version the matcher compares to reload; delivery health (failing since,
last success) is written by the outbox and is not such a change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ingest.models import Subscription, SubscriptionOptions


class SubscriptionStore(Protocol):
    def add_subscription(self, sub: Subscription) -> Subscription: ...

    def get_subscription(self, sub_id: str) -> Subscription: ...

    def list_subscriptions(self) -> list[Subscription]: ...

    def list_subscriptions_page(
        self, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Subscription]:
        """Oldest first by (created_at, id), strictly after the `after` key."""
        ...

    def set_subscription_status(self, sub_id: str, status: str, reason: str | None) -> None: ...

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
        """Change the given fields (None: unchanged); return the stored subscription."""
        ...

    def remove_subscription(self, sub_id: str) -> None:
        """Remove the subscription and its alerts."""
        ...

    def subscriptions_version(self) -> str:
        """Changes whenever a subscription is added, changed or removed (matcher reload key)."""
        ...

    def rotate_subscription_secret(
        self, sub_id: str, secret: str, *, previous_valid_until: datetime
    ) -> Subscription:
        """Make `secret` current; the old one keeps signing until `previous_valid_until`."""
        ...

    def get_signing_secrets(self, sub_id: str, *, now: datetime | None = None) -> list[str]:
        """Current secret first, then the previous one while its grace period lasts."""
        ...
