"""Managing subscriptions: create (with backfill), change, pause, resume, rotate the secret, remove.

`ingest subs ...` and `/subscriptions` both call these, so a value one accepts the other accepts,
with the same words when refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.errors import ConfigError, FetchError, QueryError
from ingest.log import get_logger
from ingest.models import Subscription, SubscriptionOptions, iso, new_subscription_id, utcnow
from ingest.services.subscriptions import make_options, parse_period
from ingest.services.usecases.paging import encode_cursor, time_key
from ingest.services.usecases.requests import (
    Conflict,
    Invalid,
    NewSubscription,
    OptionsInput,
    PageQuery,
    SubscriptionChange,
)
from ingest.services.usecases.views import (
    RotatedSecret,
    SubscriptionPage,
    SubscriptionView,
    SubscriptionWithSecret,
    delivery_state,
    subscription_view,
)
from ingest.settings import Settings
from ingest.store.base import Store

log = get_logger(__name__)


def checked_query(query: str) -> str:
    """The query if it parses; Invalid with the problem and its 0-based position if not."""
    from ingest.match import parse_query  # the match package loads on first use

    try:
        parse_query(query)
    except QueryError as exc:
        raise Invalid("query", f"{exc.reason} at position {exc.position}", position=exc.position) from None
    except RecursionError:
        raise Invalid("query", "is nested too deeply") from None
    return query


def checked_webhook(url: str, settings: Settings) -> str:
    """A webhook URL the sender may call: http(s), resolving only to public (or allowed) addresses."""
    from ingest.net.guard import check_url

    try:
        check_url(url, settings.allowed_networks)
    except FetchError as exc:  # the address check speaks of fetching; a webhook is not fetched
        raise Invalid("webhook", exc.reason) from None
    except ValueError as exc:
        raise Invalid("webhook", f"not a valid URL: {exc}") from None
    return url


def checked_secret(secret: str) -> str:
    from ingest.alert.signature import validate_secret

    try:
        return validate_secret(secret)
    except ConfigError as exc:
        raise Invalid("secret", str(exc)) from None


def checked_period(value: str | None) -> timedelta | None:
    try:
        return parse_period(value) if value is not None else None
    except ConfigError as exc:
        raise Invalid("backfill", str(exc)) from None


@dataclass
class Subscriptions:
    """The subscription use cases over one store; `wake` rings the sender after alerts are queued."""

    store: Store
    settings: Settings
    wake: Callable[[], None]

    def options(self, given: OptionsInput | None) -> SubscriptionOptions | None:
        if given is None:
            return None
        try:
            return make_options(
                self.store,
                languages=given.languages,
                feeds=given.feed_ids,
                digest_minutes=given.digest_minutes,
                rate_limit=given.rate_limit,
            )
        except ConfigError as exc:
            raise Invalid("options", str(exc)) from None

    def create(self, req: NewSubscription) -> SubscriptionWithSecret:
        """Store a new subscription (a second one with the same query and webhook is refused)."""
        from ingest.alert.signature import new_secret

        query = checked_query(req.query)
        secret = checked_secret(req.secret) if req.secret is not None else new_secret()
        webhook = checked_webhook(req.webhook, self.settings)
        options = self.options(req.options) or SubscriptionOptions()
        period = checked_period(req.backfill)
        if any(s.query == query and s.webhook == webhook for s in self.store.list_subscriptions()):
            raise Conflict("a subscription with this query and webhook already exists")
        sub = self.store.add_subscription(
            Subscription(
                id=new_subscription_id(),
                name=req.name or query,
                query=query,
                webhook=webhook,
                secret=secret,
                created_at=utcnow(),
                options=options,
            )
        )
        log.info("subscription_created", subscription_id=sub.id)
        backfilled = None
        if period is not None:
            from ingest.services.subscriptions import backfill

            backfilled = len(backfill(self.store, sub, period))
            self.wake()
        view = subscription_view(sub)
        return SubscriptionWithSecret(
            **{f: getattr(view, f) for f in view.__struct_fields__}, secret=sub.secret, backfilled=backfilled
        )

    def update(self, sub_id: str, change: SubscriptionChange) -> SubscriptionView:
        """Change what is given; an explicit secret replaces the old one at once (no grace)."""
        self.store.get_subscription(sub_id)  # NotFound before checking anything against the network
        query = checked_query(change.query) if change.query is not None else None
        secret = checked_secret(change.secret) if change.secret is not None else None
        webhook = checked_webhook(change.webhook, self.settings) if change.webhook is not None else None
        options = self.options(change.options)
        sub = self.store.update_subscription(
            sub_id, name=change.name, query=query, webhook=webhook, options=options
        )
        if secret is not None:
            sub = self.store.rotate_subscription_secret(sub_id, secret, previous_valid_until=utcnow())
        if change.status is not None:
            if change.status == "paused":
                self.pause(sub_id)
            else:
                self.resume(sub_id)
            sub = self.store.get_subscription(sub_id)
        log.info("subscription_changed", subscription_id=sub_id)
        return self.view(sub)

    def pause(self, sub_id: str, *, by: str = "the API") -> Subscription:
        """Stop delivering; pending alerts stay pending and new matches wait until resumed."""
        self.store.get_subscription(sub_id)
        self.store.set_subscription_status(sub_id, "paused", f"paused with {by} on {iso(utcnow())}")
        return self.store.get_subscription(sub_id)

    def resume(self, sub_id: str) -> tuple[Subscription, int]:
        """Back to active (paused or disabled); the sender is woken for the alerts that waited."""
        self.store.get_subscription(sub_id)
        self.store.set_subscription_status(sub_id, "active", None)
        pending = len(self.store.subscription_alerts(sub_id, "pending"))
        self.wake()
        return self.store.get_subscription(sub_id), pending

    def rotate_secret(self, sub_id: str) -> RotatedSecret:
        """A new secret now; the old one keeps signing for INGEST_SECRET_GRACE_SECONDS."""
        from ingest.alert.signature import new_secret

        until = utcnow() + timedelta(seconds=self.settings.secret_grace_seconds)
        sub = self.store.rotate_subscription_secret(sub_id, new_secret(), previous_valid_until=until)
        return RotatedSecret(subscription=self.view(sub), secret=sub.secret, previous_secret_expires_at=until)

    def remove(self, sub_id: str) -> Subscription:
        """Remove the subscription and its alerts; returns what was removed."""
        sub = self.store.get_subscription(sub_id)
        self.store.remove_subscription(sub_id)
        log.info("subscription_removed", subscription_id=sub_id)
        return sub

    def get(self, sub_id: str) -> SubscriptionView:
        return self.view(self.store.get_subscription(sub_id))

    def view(self, sub: Subscription, now: datetime | None = None) -> SubscriptionView:
        return self.views([sub], now)[0]

    def views(self, subs: list[Subscription], now: datetime | None = None) -> list[SubscriptionView]:
        """Subscriptions as shown: webhook redacted, with their delivery state."""
        receivers = {r.origin: r for r in self.store.get_receivers()}
        now = now or utcnow()
        return [subscription_view(s, delivery_state(s, receivers, now)) for s in subs]

    def page(self, q: PageQuery) -> SubscriptionPage:
        after = time_key(q.cursor, "subscriptions")
        subs = self.store.list_subscriptions_page(limit=q.limit + 1, after=after)
        more, subs = len(subs) > q.limit, subs[: q.limit]
        last = subs[-1] if subs else None
        cursor = encode_cursor("subscriptions", iso(last.created_at), last.id) if more and last else None
        return SubscriptionPage(items=self.views(subs), next_cursor=cursor)

    def all(self) -> list[SubscriptionView]:
        return self.views(self.store.list_subscriptions())
