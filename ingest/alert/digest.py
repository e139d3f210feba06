"""Digest mode: a subscription's matches held, then sent as one webhook every N minutes.

A match of a digest subscription is recorded in the outbox like any other
(unique per subscription and story) and then `held`. When its window closes
(windows are aligned on multiples of N minutes since the epoch), the held
alerts become the members of one digest alert: its own outbox row and
webhook-id (`alert_id(subscription, "digest:<window end>")`), delivered,
retried, dead-lettered and replayed exactly like a single alert. Each story
is in one digest only, because each (subscription, story) alert is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ingest.errors import NotFound
from ingest.log import get_logger
from ingest.models import DIGEST_PREFIX, Alert, Article, Subscription, alert_id, iso, utcnow
from ingest.store.base import Store

log = get_logger(__name__)

DIGEST_EVENT = "article.digest"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_end(now: datetime, minutes: int) -> datetime:
    """The latest window boundary at or before `now` (multiples of `minutes` since the epoch)."""
    step = timedelta(minutes=minutes)
    return _EPOCH + ((now - _EPOCH) // step) * step


def digest_alert(sub_id: str, end: datetime) -> Alert:
    """The outbox row of the digest closing at `end`; its id is deterministic, so cutting is idempotent."""
    story = f"{DIGEST_PREFIX}{iso(end)}"
    return Alert(
        id=alert_id(sub_id, story), subscription_id=sub_id, story_id=story, article_id="", matched_terms=[]
    )


@dataclass
class CutResult:
    """What one pass of the digest cutter made: digests to queue, alerts released to queue."""

    digests: list[Alert] = field(default_factory=list)
    released: list[Alert] = field(default_factory=list)


def cut_digests(store: Store, now: datetime | None = None) -> CutResult:
    """Close every digest window that has ended and holds matches (the sweeper calls this)."""
    now = now or utcnow()
    result = CutResult()
    for sub_id in store.held_subscription_ids():
        try:
            sub = store.get_subscription(sub_id)
        except NotFound:
            continue
        if sub.status == "disabled":
            continue  # nothing would be delivered; held alerts wait for a resume
        minutes = sub.options.digest_minutes
        if not minutes:
            result.released += store.release_held(sub_id)  # digest mode was switched off
            continue
        end = window_end(now, minutes)
        digest = store.cut_digest(digest_alert(sub_id, end), before=end)
        if digest is not None:
            result.digests.append(digest)
            log.info("digest_cut", alert_id=digest.id, subscription_id=sub_id, window_end=iso(end))
    return result


def digest_items(store: Store, digest: Alert) -> list[tuple[Alert, Article]]:
    """The digest's members with their articles (a member whose article was deleted is left out)."""
    items = []
    for member in store.digest_members(digest.id):
        try:
            items.append((member, store.get_article(member.article_id)))
        except NotFound:
            continue
    return items


def build_digest_payload(sub: Subscription, digest: Alert, items: Sequence[tuple[Alert, Article]]) -> bytes:
    """The digest body: `type` article.digest, `data.articles` one entry per story (see docs/alerts.md)."""
    end = digest.story_id.removeprefix(DIGEST_PREFIX)
    minutes = sub.options.digest_minutes
    start = None
    if minutes:
        parsed = datetime.fromisoformat(end.replace("Z", "+00:00"))
        start = iso(parsed - timedelta(minutes=minutes))
    body = {
        "type": DIGEST_EVENT,
        "timestamp": iso(utcnow()),
        "data": {
            "subscription_id": sub.id,
            "subscription_name": sub.name,
            "query": sub.query,
            "window_start": start,
            "window_end": end,
            "count": len(items),
            "articles": [
                {**article.to_dict(), "alert_id": member.id, "matched_terms": list(member.matched_terms)}
                for member, article in items
            ],
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
