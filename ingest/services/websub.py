"""WebSub as the subscriber: ask a hub for pushes, answer its verification, accept its pushes.

The protocol's pure rules are `ingest.feeds.websub`; the HTTP POST to the hub is the caller's
(`FormPoster`, the poller's guarded client), the callback routes are `app/api/websub.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ingest.errors import FetchError
from ingest.feeds.websub import callback_url
from ingest.log import get_logger
from ingest.models import Feed, FetchResult, RawEntry, WebSubSubscription
from ingest.parse import parse_feed
from ingest.settings import Settings
from ingest.store.feeds import FeedStore

log = get_logger(__name__)

# POST a form to a hub URL; the status code (raises FetchError when the hub cannot be reached)
FormPoster = Callable[[str, dict[str, str]], Awaitable[int]]
QueueEntries = Callable[[Feed, Sequence[RawEntry]], Any]


async def subscribe(
    post: FormPoster, store: FeedStore, settings: Settings, feed: Feed, hub: str, topic: str
) -> WebSubSubscription:
    """Ask `hub` for pushes of `topic`; the subscription stays pending until the hub verifies it."""
    callback = callback_url(settings, feed.id)
    if callback is None:
        raise ValueError("INGEST_PUBLIC_URL is not set: no callback to give the hub")
    existing = store.get_websub(feed.id)
    secret = existing.secret if existing and existing.hub == hub else secrets.token_hex(32)
    sub = WebSubSubscription(
        feed_id=feed.id,
        hub=hub,
        topic=topic,
        secret=secret,
        state="pending",
        lease_until=existing.lease_until if existing else None,
        lease_seconds=existing.lease_seconds if existing else None,
    )
    store.save_websub(sub)  # before asking: the hub may verify before it answers
    form = {
        "hub.mode": "subscribe",
        "hub.topic": topic,
        "hub.callback": callback,
        "hub.secret": secret,
        "hub.lease_seconds": str(settings.websub_lease),
    }
    bound = log.bind(feed_id=feed.id, feed_url=feed.url, hub=hub)
    try:
        status = await post(hub, form)
        error = None if 200 <= status < 300 else f"hub answered HTTP {status}"
    except FetchError as exc:
        error = f"hub unreachable: {exc.reason}"
    current = store.get_websub(feed.id) or sub
    if error:
        current = replace(current, state="failed", last_error=error)
        store.save_websub(current)
        bound.warning("websub_subscribe_failed", error=error)
    else:
        bound.info("websub_subscribe_requested", state=current.state)
    return current


def verify_intent(store: FeedStore, feed_id: int, params: Any, now: datetime) -> tuple[int, str]:
    """The answer to a hub's GET: the challenge echoed only for a subscription we asked for."""
    mode, topic = params.get("hub.mode", ""), params.get("hub.topic", "")
    challenge = params.get("hub.challenge", "")
    sub = store.get_websub(feed_id)
    bound = log.bind(feed_id=feed_id, mode=mode, topic=topic)
    if mode == "denied":
        if sub and sub.topic == topic:
            store.save_websub(
                replace(
                    sub, state="denied", last_error=f"hub denied: {params.get('hub.reason') or 'no reason'}"
                )
            )
        bound.warning("websub_denied", reason=params.get("hub.reason"))
        return 200, "ok"
    wanted = sub is not None and sub.topic == topic and sub.state in ("pending", "active")
    if mode == "subscribe" and challenge and sub is not None and wanted:
        lease = params.get("hub.lease_seconds", "")
        seconds = int(lease) if lease.isdigit() else None
        until = now + timedelta(seconds=seconds) if seconds else None
        store.save_websub(
            replace(sub, state="active", lease_until=until, lease_seconds=seconds, last_error=None)
        )
        bound.info("websub_verified", lease_seconds=lease or None)
        return 200, challenge
    if mode == "unsubscribe" and challenge and sub is None:
        return 200, challenge  # the feed was removed: we no longer want it
    bound.warning("websub_verification_refused")
    return 404, "no such subscription"


def ingest_push(
    store: FeedStore, settings: Settings, queue: QueueEntries, feed_id: int, body: bytes, content_type: str
) -> int:
    """Parse a verified push and accept its entries as a poll would; how many entries it had."""
    feed = store.get_feed(feed_id)
    result = FetchResult(url=feed.url, status=200, content=body, headers={"content-type": content_type})
    parsed = parse_feed(result, feed_id=feed.id, feed_url=feed.url, max_entries=settings.max_entries)
    queue(feed, parsed.entries)
    return len(parsed.entries)
