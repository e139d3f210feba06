"""WebSub (PubSubHubbub) subscriber: subscribe at a feed's hub, verify intent, take signed pushes.

Flow (W3C WebSub): a feed advertises `rel="hub"` (and `rel="self"`, the topic). When
INGEST_PUBLIC_URL is set, the poller subscribes with callback `<public url>/websub/<feed id>`,
a per-feed secret and a lease; the hub confirms with a GET carrying `hub.challenge`, which
is echoed only for a subscription we asked for. The hub then POSTs new content signed with
`X-Hub-Signature: sha256=<HMAC of the body>`; unsigned or badly signed bodies are
acknowledged and dropped (as the spec asks), good ones are parsed and queued exactly as the
poller queues a fetched document. Leases are renewed a day (or half a short lease) before
they end; polling goes on at a slow fallback interval while the subscription is active.

The callback routes are the API's (`app/api/websub.py`); they pass in how entries are
accepted (`ingest.services.intake.Intake.accept`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from ingest.errors import FetchError
from ingest.log import get_logger
from ingest.models import Feed, FetchResult, RawEntry, WebSubSubscription
from ingest.net.guard import check_scheme
from ingest.parse import parse_feed
from ingest.settings import Settings
from ingest.store.base import Store

log = get_logger(__name__)

PREFIX = "/websub"
RENEW_BEFORE = timedelta(days=1)
PENDING_RETRY = timedelta(hours=1)  # a hub that never verified: ask again after this
FAILED_RETRY = timedelta(hours=6)
_ALGORITHMS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

QueueEntries = Callable[[Feed, Sequence[RawEntry]], Any]


def callback_url(settings: Settings, feed_id: int) -> str | None:
    """Where the hub calls us back for this feed, or None without INGEST_PUBLIC_URL."""
    if not settings.public_url:
        return None
    return f"{settings.public_url.rstrip('/')}{PREFIX}/{feed_id}"


def is_active(sub: WebSubSubscription | None, now: datetime) -> bool:
    """Whether pushes are expected now (verified, lease running)."""
    return bool(sub and sub.state == "active" and sub.lease_until and sub.lease_until > now)


def needs_subscription(sub: WebSubSubscription | None, hub: str, topic: str, now: datetime) -> bool:
    """Subscribe (again) when new, moved, near the lease's end (a day, or half a short lease, before),
    or stuck pending/failed long enough."""
    if sub is None or sub.hub != hub or sub.topic != topic:
        return True
    age = now - (sub.updated_at or now)
    if sub.state == "active":
        if sub.lease_until is None:
            return True
        granted = timedelta(seconds=sub.lease_seconds) if sub.lease_seconds else 2 * RENEW_BEFORE
        return sub.lease_until - now < min(RENEW_BEFORE, granted / 2)
    if sub.state == "pending":
        return age >= PENDING_RETRY
    return age >= FAILED_RETRY  # denied or failed


def sign(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    """The X-Hub-Signature value a hub sends for `body`."""
    return f"{algorithm}={hmac.new(secret.encode(), body, _ALGORITHMS[algorithm]).hexdigest()}"


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is `<algo>=<hex HMAC of body>` with our secret (sha1/256/384/512)."""
    algorithm, _, digest = (header or "").strip().partition("=")
    if algorithm.lower() not in _ALGORITHMS or not digest:
        return False
    return hmac.compare_digest(sign(secret, body, algorithm.lower()), f"{algorithm.lower()}={digest.lower()}")


async def subscribe(
    client: httpx.AsyncClient, store: Store, settings: Settings, feed: Feed, hub: str, topic: str
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
        check_scheme(hub)
        response = await client.post(hub, data=form, timeout=settings.fetch_timeout)
        error = None if 200 <= response.status_code < 300 else f"hub answered HTTP {response.status_code}"
    except (httpx.HTTPError, FetchError) as exc:
        error = f"hub unreachable: {getattr(exc, 'reason', None) or exc}"
    current = store.get_websub(feed.id) or sub
    if error:
        current = replace(current, state="failed", last_error=error)
        store.save_websub(current)
        bound.warning("websub_subscribe_failed", error=error)
    else:
        bound.info("websub_subscribe_requested", state=current.state)
    return current


# -- the callback endpoint's logic (routes: app/api/websub.py) -------------------------


def verify_intent(store: Store, feed_id: int, params: Any, now: datetime) -> tuple[int, str]:
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
    store: Store, settings: Settings, queue: QueueEntries, feed_id: int, body: bytes, content_type: str
) -> int:
    """Parse a verified push and accept its entries as a poll would; how many entries it had."""
    feed = store.get_feed(feed_id)
    result = FetchResult(url=feed.url, status=200, content=body, headers={"content-type": content_type})
    parsed = parse_feed(result, feed_id=feed.id, feed_url=feed.url, max_entries=settings.max_entries)
    queue(feed, parsed.entries)
    return len(parsed.entries)
