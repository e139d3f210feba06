"""WebSub (PubSubHubbub) subscriber: subscribe at a feed's hub, verify intent, take signed pushes.

Flow (W3C WebSub): a feed advertises `rel="hub"` (and `rel="self"`, the topic). When
INGEST_PUBLIC_URL is set, the poller subscribes with callback `<public url>/websub/<feed id>`,
a per-feed secret and a lease; the hub confirms with a GET carrying `hub.challenge`, which
is echoed only for a subscription we asked for. The hub then POSTs new content signed with
`X-Hub-Signature: sha256=<HMAC of the body>`; unsigned or badly signed bodies are
acknowledged and dropped (as the spec asks), good ones are parsed and queued exactly as the
poller queues a fetched document. Leases are renewed a day (or half a short lease) before
they end; polling goes on at a slow fallback interval while the subscription is active.

This module is the protocol's pure part; subscribing, verifying intent and taking pushes
is `ingest.services.websub`, the callback routes are the API's (`app/api/websub.py`).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from ingest.log import get_logger
from ingest.models import WebSubSubscription
from ingest.settings import Settings

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
