"""The outbox as operators see it: the delivery log, replay of failed alerts, the delivery status.

A replay gives a failed alert one more attempt with the same webhook-id; the sender is woken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ingest.models import Alert, iso, utcnow
from ingest.services.usecases.paging import encode_cursor, time_key
from ingest.services.usecases.requests import AlertQuery, Conflict
from ingest.services.usecases.views import AlertPage, DeliveryStatus, alert_view, delivery_status
from ingest.settings import Settings
from ingest.store.base import Store


@dataclass
class Alerts:
    store: Store
    settings: Settings
    wake: Callable[[], None]

    def page(self, q: AlertQuery) -> AlertPage:
        """Newest first, optionally one status and/or one subscription."""
        after = time_key(q.cursor, "alerts")
        alerts = self.store.list_alerts_page(
            limit=q.limit + 1, status=q.status, subscription_id=q.subscription, after=after
        )
        more, alerts = len(alerts) > q.limit, alerts[: q.limit]
        last = alerts[-1] if alerts else None
        cursor = encode_cursor("alerts", iso(last.created_at), last.id) if more and last else None
        return AlertPage(items=[alert_view(a) for a in alerts], next_cursor=cursor)

    def get(self, alert_id: str) -> Alert:
        return alert_view(self.store.get_alert(alert_id))

    def _check_active(self, sub_id: str) -> None:
        sub = self.store.get_subscription(sub_id)
        if sub.status != "active":
            raise Conflict(
                f"subscription {sub.id} is {sub.status} ({sub.status_reason}); resume it first "
                f"(`ingest subs resume {sub.id}`, or PATCH its status to active)"
            )

    def replay(self, alert_id: str) -> Alert:
        """One failed alert back to pending, one more attempt, the same webhook-id."""
        alert = self.store.get_alert(alert_id)
        self._check_active(alert.subscription_id)
        replayed = self._retry([alert])
        if not replayed:
            raise Conflict(f"alert {alert_id} is {alert.status}, only failed alerts are replayed")
        return alert_view(replayed[0])

    def replay_subscription(self, sub_id: str) -> list[Alert]:
        """Every failed alert of a subscription, as `replay` does each."""
        self._check_active(sub_id)
        return [alert_view(a) for a in self._retry(self.store.subscription_alerts(sub_id, "failed"))]

    def _retry(self, alerts: list[Alert]) -> list[Alert]:
        attempts = len(self.settings.webhook_retry_schedule)  # the replay gets one more attempt
        replayed = [r for r in (self.store.retry_failed_alert(a.id, attempts=attempts) for a in alerts) if r]
        if replayed:
            self.wake()
        return replayed

    def status(self, now: datetime | None = None) -> DeliveryStatus:
        """Due, in flight, oldest due, failed, held, and every receiver's circuit."""
        return delivery_status(self.store.delivery_stats(now or utcnow()), self.store.get_receivers())
