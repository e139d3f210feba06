"""The outbox aggregate: alerts (one per subscription and story), digests, and their delivery.

The database outbox is the record. A sender claims due alerts with a lease (`claim_alerts`: the
attempt is counted before it starts, so a sender killed mid-attempt still counts it), reports what
happened (`finish_attempts`), or hands back what it never started (`release_leases`). Receivers'
circuit states live here too, so every sender sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ingest.models import Alert, Subscription

ATTEMPT_STATUSES = frozenset({"delivered", "pending", "failed", "held"})


@dataclass(frozen=True)
class Claim:
    """One leased alert and what its attempt needs."""

    alert: Alert  # as stored after the claim: attempts already incremented
    subscription: Subscription
    secrets: list[str]  # signing secrets: current first, the previous one while in grace


@dataclass(frozen=True)
class AttemptOutcome:
    """What one claimed alert becomes."""

    alert_id: str
    status: str  # delivered | pending | failed | held
    attempts: int  # the attempts count to store
    next_attempt_at: datetime | None
    error: str | None
    # True: the receiver accepted it (subscription failing_since = NULL, last_success_at = now);
    # False: a failed attempt (failing_since = coalesce(failing_since, now)); None: no attempt was made
    receiver_ok: bool | None


@dataclass(frozen=True)
class ReceiverState:
    """A receiver origin's circuit breaker, shared by every sender."""

    origin: str
    state: str  # closed | open | half_open
    failures: int
    open_until: datetime | None
    last_error: str | None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryStats:
    """The outbox at a glance (metrics, `ingest alerts status`)."""

    due: int  # pending, due now, not leased
    in_flight: int  # pending and leased (lease_until > now)
    oldest_due_at: datetime | None  # since when the longest-waiting due alert has been due
    held: int
    failed: int
    open_circuits: int  # receivers with open_until > now


class OutboxStore(Protocol):
    def add_alerts(self, alerts: Sequence[Alert]) -> list[Alert]:
        """Insert; unique on (subscription_id, story_id). Return only the new ones."""
        ...

    def get_alert(self, alert_id: str) -> Alert: ...

    def list_alerts(self, *, status: str | None = None, limit: int = 100) -> list[Alert]: ...

    def list_alerts_page(
        self,
        *,
        limit: int,
        status: str | None = None,
        subscription_id: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> list[Alert]:
        """Newest first by (created_at, id), strictly after the `after` key."""
        ...

    def subscription_alerts(self, sub_id: str, status: str, *, limit: int = 10_000) -> list[Alert]:
        """One subscription's alerts in one status, oldest first."""
        ...

    def retry_failed_alert(
        self, alert_id: str, *, attempts: int, now: datetime | None = None
    ) -> Alert | None:
        """A failed alert back to pending with `attempts`, due now, unleased; None if it is not failed."""
        ...

    # -- the sender: claims with leases ------------------------------------------
    def claim_alerts(
        self, owner: str, *, now: datetime, lease_until: datetime, subscriptions: int, per_subscription: int
    ) -> list[Claim]:
        """Lease the oldest due alerts of the least recently claimed eligible subscriptions.

        Eligible: not paused, its origin's circuit not open, none of its alerts leased. Each
        claimed alert counts one more attempt; groups come by subscription, in alert order.
        """
        ...

    def finish_attempts(self, owner: str, outcomes: Sequence[AttemptOutcome], *, now: datetime) -> int:
        """Apply the outcomes of alerts still leased by `owner` (lease cleared); return how many."""
        ...

    def release_leases(self, owner: str) -> int:
        """Clear `owner`'s leases, one attempt less each (they never started); return how many."""
        ...

    def save_receiver(self, state: ReceiverState) -> None:
        """Insert or replace a receiver origin's circuit state."""
        ...

    def get_receivers(self) -> list[ReceiverState]: ...

    def delivery_stats(self, now: datetime) -> DeliveryStats: ...

    # -- digests -------------------------------------------------------------
    def held_subscription_ids(self) -> list[str]:
        """Subscriptions with alerts held for a digest."""
        ...

    def cut_digest(self, digest: Alert, *, before: datetime, max_members: int) -> Alert | None:
        """Insert `digest` carrying the oldest `max_members` alerts held before `before` (the rest wait)."""
        ...

    def release_held(self, sub_id: str) -> list[Alert]:
        """Held alerts back to pending (the subscription left digest mode); returns its pending alerts."""
        ...

    def digest_members(self, digest_id: str) -> list[Alert]:
        """The alerts a digest carries, oldest first."""
        ...

    # -- seeding and bookkeeping that tests still use ----------------------------------
    def record_attempt(
        self,
        alert_id: str,
        *,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None,
        error: str | None,
    ) -> None: ...

    def record_subscription_delivery(
        self, sub_id: str, *, ok: bool, at: datetime | None = None
    ) -> datetime | None:
        """Note a delivery outcome; return `failing_since` afterwards (None after a success)."""
        ...
