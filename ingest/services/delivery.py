"""Delivering alerts: what each claimed alert becomes, and what each attempt's outcome records.

The outbox in the database is the record. A sender claims due alerts in fair groups (the
oldest few of each subscription, at most one group of a subscription in flight anywhere,
`OutboxStore.claim_alerts`); a claim leases them and counts their attempt before it starts,
so a sender killed mid-attempt has still spent it. This service turns claims into bodies to
send (or settles them at once: dead-lettered, held for a digest, deferred by the rate limit)
and turns attempts into outcomes (delivered, retried per the schedule, dead-lettered,
subscription disabled). The sending itself is `ingest.services.dispatch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from ingest.alert.payload import article_json, build_digest_payload, build_payload
from ingest.alert.policy import Attempt, disable_reason, next_delay
from ingest.clean.url import origin
from ingest.log import get_logger
from ingest.models import Subscription, utcnow
from ingest.services.digests import digest_items
from ingest.services.ports import Metrics
from ingest.settings import Settings
from ingest.store.base import Store
from ingest.store.outbox import AttemptOutcome, Claim

log = get_logger(__name__)

LEASE_MARGIN_SECONDS = 5.0  # a lease outlives its group's attempts by this much (or one deadline more)


class RateLimiter(Protocol):
    def acquire(self, sub_id: str, limit: int) -> float:
        """0.0 if a webhook may go now, else seconds to wait (`ingest.alert.ratelimit`)."""
        ...


@dataclass(frozen=True)
class Send:
    """One attempt to make: the claimed alert and its body (signed at send time)."""

    claim: Claim
    body: bytes

    @property
    def alert_id(self) -> str:
        return self.claim.alert.id


@dataclass(frozen=True)
class Group:
    """One subscription's claimed alerts, sent in order (stories in the order first seen)."""

    subscription: Subscription
    origin: str
    sends: tuple[Send, ...]


class DeliveryService:
    """Claims and outcomes; safe to call from a worker thread of the sender's event loop."""

    def __init__(self, store: Store, limiter: RateLimiter, metrics: Metrics, settings: Settings, *,
                 owner: str, per_subscription: int = 8) -> None:  # fmt: skip
        self.store = store
        self.limiter = limiter
        self.metrics = metrics
        self.settings = settings
        self.owner = owner
        self.per_subscription = per_subscription
        self.max_attempts = len(settings.webhook_retry_schedule) + 1
        margin = max(LEASE_MARGIN_SECONDS, settings.webhook_timeout)
        self.lease = timedelta(seconds=per_subscription * settings.webhook_timeout + margin)

    # -- claims ------------------------------------------------------------------------------
    def claim(
        self, subscriptions: int, now: datetime | None = None
    ) -> tuple[list[Group], list[AttemptOutcome]]:
        """Claim due alerts of up to `subscriptions` subscriptions: groups to send, outcomes settled now."""
        now = now or utcnow()
        claims = self.store.claim_alerts(self.owner, now=now, lease_until=now + self.lease,
                                         subscriptions=subscriptions,
                                         per_subscription=self.per_subscription)  # fmt: skip
        groups: dict[str, list[Send]] = {}
        settled: list[AttemptOutcome] = []
        subs: dict[str, Subscription] = {}
        bodies = _Bodies(self.store, claims)
        for claim in claims:
            sub = subs.setdefault(claim.subscription.id, claim.subscription)
            send, outcome = self._prepare(claim, now, bodies)
            if outcome is not None:
                settled.append(outcome)
            elif send is not None:
                groups.setdefault(sub.id, []).append(send)
        settled += self._rate_limit(groups, subs, now)
        return [Group(subs[s], origin(subs[s].webhook), tuple(v)) for s, v in groups.items() if v], settled

    def _prepare(self, claim: Claim, now: datetime,
                 bodies: _Bodies) -> tuple[Send | None, AttemptOutcome | None]:  # fmt: skip
        alert, sub = claim.alert, claim.subscription
        if alert.attempts > self.max_attempts:
            error = f"attempts used up ({self.max_attempts}); the last one was abandoned"
            return None, self._failed(claim, f"{error}. {alert.last_error or ''}".strip())
        if sub.status == "disabled":
            return None, self._failed(claim, f"subscription disabled: {sub.status_reason}")
        if sub.options.digest_minutes and not alert.is_digest:
            return None, AttemptOutcome(alert.id, "held", alert.attempts - 1, None, alert.last_error, None)
        body = bodies.body(sub, claim)
        if body is None:
            return None, self._failed(claim, "nothing left to send: the article was deleted")
        return Send(claim, body), None

    def _rate_limit(self, groups: dict[str, list[Send]], subs: dict[str, Subscription],
                    now: datetime) -> list[AttemptOutcome]:  # fmt: skip
        """Over a subscription's rate limit, the rest of its group waits (not an attempt, nothing dropped)."""
        deferred: list[AttemptOutcome] = []
        for sub_id, sends in groups.items():
            limit = subs[sub_id].options.rate_limit
            if not limit:
                continue
            for n in range(len(sends)):
                wait = self.limiter.acquire(sub_id, limit)
                if wait > 0:
                    deferred += [self.release(s, now + timedelta(seconds=wait)) for s in sends[n:]]
                    log.info("alert_rate_limited", subscription_id=sub_id, deferred=len(sends) - n,
                             delay=round(wait, 1))  # fmt: skip
                    del sends[n:]
                    break
        return deferred

    # -- outcomes ----------------------------------------------------------------------------
    def outcome(self, send: Send, attempt: Attempt, now: datetime | None = None) -> AttemptOutcome:
        """What an attempt leaves: delivered, retried later, or dead-lettered (and perhaps disabled)."""
        now = now or utcnow()
        alert, sub = send.claim.alert, send.claim.subscription
        fields = {"alert_id": alert.id, "subscription_id": sub.id, "article_id": alert.article_id,
                  "attempt": alert.attempts}  # fmt: skip
        if attempt.ok:
            self._count_delivered(attempt)
            log.info("alert_delivered", **fields, status=attempt.status, seconds=round(attempt.seconds, 3))
            return AttemptOutcome(alert.id, "delivered", alert.attempts, None, None, True)
        error = attempt.error or "failed"
        reason = disable_reason(gone=attempt.gone, failing_since=sub.failing_since or now, now=now,
                                days=self.settings.disable_after_days, error=error)  # fmt: skip
        if reason is not None:
            self.store.set_subscription_status(sub.id, "disabled", reason)
            log.warning("subscription_disabled", **fields, reason=reason)
            return self._failed(send.claim, error, receiver_ok=False)
        delay = next_delay(self.settings.webhook_retry_schedule, alert.attempts, attempt.retry_after)
        if delay is None:
            log.warning("alert_dead_lettered", **fields, error=error)
            return self._failed(send.claim, error, receiver_ok=False)
        self.metrics.count("ingest_alerts_retried_total")
        self.metrics.count("ingest_alert_attempts_total", {"outcome": "retry"})
        log.warning("alert_retry_scheduled", **fields, error=error, delay=round(delay, 1))
        return AttemptOutcome(
            alert.id, "pending", alert.attempts, now + timedelta(seconds=delay), error, False
        )

    def release(self, send: Send, at: datetime | None = None) -> AttemptOutcome:
        """Not attempted after all (stopping, circuit open, rate limit): the attempt is given back."""
        alert = send.claim.alert
        return AttemptOutcome(alert.id, "pending", alert.attempts - 1, at or alert.next_attempt_at,
                              alert.last_error, None)  # fmt: skip

    def abandoned(self, send: Send, now: datetime | None = None) -> AttemptOutcome:
        """Cut short by a stopping sender: counted as a failed attempt, retried per the schedule."""
        return self.outcome(send, Attempt(None, "abandoned: the sender stopped during the attempt", 0.0), now)

    def finish(self, outcomes: Sequence[AttemptOutcome]) -> int:
        """Record outcomes in one transaction (only alerts this sender still leases)."""
        return self.store.finish_attempts(self.owner, outcomes, now=utcnow()) if outcomes else 0

    def _failed(self, claim: Claim, error: str, receiver_ok: bool | None = None) -> AttemptOutcome:
        self.metrics.count("ingest_alerts_failed_total")
        self.metrics.count("ingest_alert_attempts_total", {"outcome": "failed"})
        return AttemptOutcome(claim.alert.id, "failed", claim.alert.attempts, None, error, receiver_ok)

    def _count_delivered(self, attempt: Attempt) -> None:
        self.metrics.count("ingest_alerts_delivered_total")
        self.metrics.count("ingest_alert_attempts_total", {"outcome": "delivered"})
        self.metrics.observe("ingest_delivery_seconds", attempt.seconds)


class _Bodies:
    """The bodies of one claim's alerts: its articles read in one query, each article's JSON built once."""

    def __init__(self, store: Store, claims: Sequence[Claim]) -> None:
        self.store = store
        self.articles = store.get_articles(c.alert.article_id for c in claims if not c.alert.is_digest)
        self.texts: dict[str, str] = {}

    def body(self, sub: Subscription, claim: Claim) -> bytes | None:
        """The alert's body, or None when nothing is left to send (the article or digest items deleted)."""
        alert = claim.alert
        if alert.is_digest:
            items = digest_items(self.store, alert)
            return build_digest_payload(sub, alert, items) if items else None
        article = self.articles.get(alert.article_id)
        if article is None:
            return None
        text = self.texts.get(article.id)
        if text is None:
            text = self.texts[article.id] = article_json(article)
        return build_payload(sub, article, alert.matched_terms, article_text=text)
