"""Delivery policy, without I/O: when to retry, when to give up, when a receiver is left alone.

- Retries follow INGEST_WEBHOOK_RETRY_SCHEDULE with up to +10 % jitter and at least a
  receiver's Retry-After (capped at the longest step); after the last step the alert is
  dead-lettered (`failed`).
- A subscription is disabled on 410 Gone, or when every delivery failed for
  INGEST_DISABLE_AFTER_DAYS days.
- A receiver origin (scheme, host, port) that fails CIRCUIT_THRESHOLD attempts in a row has
  its circuit opened: its alerts wait, without spending attempts, for a cool-down that doubles
  on each re-opening (CIRCUIT_BASE_SECONDS up to CIRCUIT_MAX_SECONDS). Then one probe group
  goes out (half open): a success closes the circuit, a failure opens it again.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.models import iso

CIRCUIT_THRESHOLD = 5
CIRCUIT_BASE_SECONDS = 30.0
CIRCUIT_MAX_SECONDS = 900.0


def next_delay(schedule: Sequence[float], attempts: int, retry_after: float | None = None,
               rng: random.Random | None = None) -> float | None:  # fmt: skip
    """Seconds until the next attempt after `attempts` attempts failed; None when retries are used up."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    delay = base + (rng or random).uniform(0, 0.1) * base
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(schedule)))
    return delay


def disable_reason(*, gone: bool, failing_since: datetime | None, now: datetime, days: float,
                   error: str) -> str | None:  # fmt: skip
    """Why the subscription must be disabled after this failure, or None."""
    if gone:
        return f"receiver answered 410 Gone on {now.date().isoformat()}"
    if days > 0 and failing_since is not None and now - failing_since >= timedelta(days=days):
        return (f"every delivery failed since {iso(failing_since)} ({days:g} days without a success); "
                f"last error: {error}")  # fmt: skip
    return None


@dataclass(frozen=True)
class Attempt:
    """How one attempt went: the receiver's status (None without an answer) and, unless 2xx, why not."""

    status: int | None
    error: str | None
    seconds: float
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def gone(self) -> bool:
        return self.status == 410


@dataclass
class Circuit:
    """One receiver origin's breaker, as a sender sees it."""

    origin: str
    state: str = "closed"  # closed | open | half_open
    failures: int = 0  # consecutive failed attempts
    opens: int = 0  # openings since the last success (the cool-down doubles with each)
    open_until: datetime | None = None
    last_error: str | None = None

    def allows(self, now: datetime) -> bool:
        """Whether attempts may go to this origin now (half-open after the cool-down)."""
        if self.state == "open" and self.open_until is not None and now >= self.open_until:
            self.state = "half_open"
        return self.state != "open"

    def success(self) -> bool:
        """Record a delivered attempt; whether the state changed (then it is saved)."""
        changed = self.state != "closed" or self.opens > 0
        self.state, self.failures, self.opens, self.open_until = "closed", 0, 0, None
        return changed

    def failure(self, now: datetime, error: str, retry_after: float | None = None) -> bool:
        """Record a failed attempt; whether the circuit opened (then it is saved)."""
        self.failures += 1
        self.last_error = error
        if self.state != "half_open" and self.failures < CIRCUIT_THRESHOLD:
            return False
        if self.state == "open":
            return False
        self.opens += 1
        seconds = min(CIRCUIT_BASE_SECONDS * 2 ** (self.opens - 1), CIRCUIT_MAX_SECONDS)
        if retry_after is not None:
            seconds = max(seconds, min(retry_after, CIRCUIT_MAX_SECONDS))
        self.state, self.open_until = "open", now + timedelta(seconds=seconds)
        return True
