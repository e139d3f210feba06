"""The outbox: alerts, digests and their delivery (placeholder of the types until the store split lands)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ingest.models import Alert, Subscription


@dataclass(frozen=True)
class Claim:
    alert: Alert
    subscription: Subscription
    secrets: list[str]


@dataclass(frozen=True)
class AttemptOutcome:
    alert_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    error: str | None
    receiver_ok: bool | None


@dataclass(frozen=True)
class ReceiverState:
    origin: str
    state: str
    failures: int
    open_until: datetime | None
    last_error: str | None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryStats:
    due: int
    in_flight: int
    oldest_due_at: datetime | None
    held: int
    failed: int
    open_circuits: int


class OutboxStore(Protocol):
    def claim_alerts(self, owner: str, *, now: datetime, lease_until: datetime, subscriptions: int,
                     per_subscription: int) -> list[Claim]: ...  # fmt: skip

    def finish_attempts(self, owner: str, outcomes: Sequence[AttemptOutcome], *, now: datetime) -> int: ...
