"""What the use cases answer, as the API serves it and `--json` prints it (one shape for both).

Secrets stay out of sight: a subscription's secret appears only in the answers to its creation
or rotation, and webhook URLs (and errors quoting them) are shown with their userinfo and query
values redacted; the store keeps them whole.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

import msgspec
from msgspec import Struct

from ingest.clean.url import origin, redact_url, redact_urls_in
from ingest.models import Alert, Article, Feed, Subscription, SubscriptionOptions
from ingest.store.outbox import DeliveryStats, ReceiverState


class Delivery(Struct, frozen=True, kw_only=True):
    """A subscription's delivery state: its own status, and its receiver's circuit."""

    state: Literal["active", "paused", "disabled"]
    circuit: Literal["closed", "open", "half_open"] = "closed"
    next_attempt_at: datetime | None = None  # when an open circuit lets the next attempt through
    receiver_error: str | None = None


class SubscriptionView(Struct, frozen=True, kw_only=True):
    id: str
    name: str
    query: str
    webhook: str  # redacted
    status: Literal["active", "paused", "disabled"]
    status_reason: str | None = None
    created_at: datetime | None = None
    options: SubscriptionOptions = SubscriptionOptions()
    failing_since: datetime | None = None
    last_success_at: datetime | None = None
    delivery: Delivery | None = None


class SubscriptionWithSecret(SubscriptionView, frozen=True, kw_only=True):
    """The answer to a creation: the only time the secret is shown, with what backfill queued."""

    secret: str
    backfilled: int | None = None


class RotatedSecret(Struct, frozen=True, kw_only=True):
    subscription: SubscriptionView
    secret: str
    previous_secret_expires_at: datetime


class ArticleView(Struct, frozen=True, kw_only=True):
    id: str
    url: str | None
    title: str
    text: str
    summary: str | None
    language: str
    language_confidence: float
    published_at: datetime | None
    feed_url: str
    story_id: str
    feed_id: int
    author: str | None
    fetched_at: datetime
    updated: bool


class Story(Struct, frozen=True, kw_only=True):
    """A story: its original (first stored) article and its syndicated copies, oldest first."""

    id: str
    article: ArticleView
    copies: list[ArticleView]


class WebSubState(Struct, frozen=True, kw_only=True):
    hub: str
    topic: str
    state: str
    lease_until: datetime | None
    last_error: str | None


class FeedPage(Struct, frozen=True, kw_only=True):
    items: list[Feed]
    next_cursor: str | None = None


class SubscriptionPage(Struct, frozen=True, kw_only=True):
    items: list[SubscriptionView]
    next_cursor: str | None = None


class ArticlePage(Struct, frozen=True, kw_only=True):
    items: list[ArticleView]
    next_cursor: str | None = None


class AlertPage(Struct, frozen=True, kw_only=True):
    items: list[Alert]
    next_cursor: str | None = None


class ReceiverView(Struct, frozen=True, kw_only=True):
    origin: str
    state: str
    failures: int
    open_until: datetime | None
    last_error: str | None


class DeliveryStatus(Struct, frozen=True, kw_only=True):
    """The outbox at a glance (`ingest alerts status`)."""

    due: int
    in_flight: int
    oldest_due_at: datetime | None
    held: int
    failed: int
    open_circuits: int
    receivers: list[ReceiverView]


def delivery_state(sub: Subscription, receivers: dict[str, ReceiverState], now: datetime) -> Delivery:
    """The subscription's status and its receiver origin's circuit (open only while open_until is ahead)."""
    receiver = receivers.get(origin(sub.webhook))
    status: Any = sub.status
    if receiver is None or receiver.state == "closed":
        return Delivery(state=status)
    opened = receiver.state == "open" and receiver.open_until is not None and receiver.open_until > now
    circuit: Any = "open" if opened else "half_open"
    return Delivery(
        state=status,
        circuit=circuit,
        next_attempt_at=receiver.open_until if opened else None,
        receiver_error=redact_urls_in(receiver.last_error),
    )


def subscription_view(sub: Subscription, delivery: Delivery | None = None) -> SubscriptionView:
    status: Any = sub.status
    return SubscriptionView(
        id=sub.id,
        name=sub.name,
        query=sub.query,
        webhook=redact_url(sub.webhook),
        status=status,
        status_reason=sub.status_reason,
        created_at=sub.created_at,
        options=sub.options,
        failing_since=sub.failing_since,
        last_success_at=sub.last_success_at,
        delivery=delivery,
    )


def article_view(article: Article) -> ArticleView:
    a = article
    return ArticleView(
        id=a.id,
        url=a.url,
        title=a.title,
        text=a.text,
        summary=a.summary,
        language=a.language,
        language_confidence=round(a.language_confidence, 4),
        published_at=a.published_at,
        feed_url=a.feed_url,
        story_id=a.story_id,
        feed_id=a.feed_id,
        author=a.author,
        fetched_at=a.fetched_at,
        updated=a.updated,
    )


def alert_view(alert: Alert) -> Alert:
    """The outbox row with the webhook URLs in its last error redacted."""
    return replace(alert, last_error=redact_urls_in(alert.last_error))


def receiver_view(r: ReceiverState) -> ReceiverView:
    return ReceiverView(
        origin=r.origin,
        state=r.state,
        failures=r.failures,
        open_until=r.open_until,
        last_error=redact_urls_in(r.last_error),
    )


def delivery_status(stats: DeliveryStats, receivers: list[ReceiverState]) -> DeliveryStatus:
    s = stats
    return DeliveryStatus(
        due=s.due,
        in_flight=s.in_flight,
        oldest_due_at=s.oldest_due_at,
        held=s.held,
        failed=s.failed,
        open_circuits=s.open_circuits,
        receivers=[receiver_view(r) for r in receivers],
    )


def to_json(value: Any) -> bytes:
    """A view (Struct or model dataclass) as JSON: datetimes as ISO 8601 UTC with `Z`."""
    return msgspec.json.encode(value)


def to_builtins(value: Any) -> Any:
    """A view as plain dicts and lists (for the CLI's JSON Lines)."""
    return msgspec.to_builtins(value)
