"""Closing digest windows: a digest subscription's held matches become one digest alert.

The sender calls `cut_digests` every few seconds; see `ingest.alert.digest` for the windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ingest.alert.digest import digest_alert, window_end
from ingest.alert.payload import MAX_DIGEST_ITEMS
from ingest.errors import NotFound
from ingest.log import get_logger
from ingest.models import Alert, Article, iso, utcnow
from ingest.store.articles import ArticleStore
from ingest.store.outbox import OutboxStore
from ingest.store.subscriptions import SubscriptionStore

log = get_logger(__name__)


class DigestStore(OutboxStore, SubscriptionStore, Protocol):
    """The store ports cutting digests uses: held alerts and their subscriptions."""


class DigestItemStore(OutboxStore, ArticleStore, Protocol):
    """The store ports reading a digest uses: its members and their articles."""


@dataclass
class CutResult:
    """What one pass of the digest cutter made: digests cut, alerts released (due now)."""

    digests: list[Alert] = field(default_factory=list)
    released: list[Alert] = field(default_factory=list)


def cut_digests(store: DigestStore, now: datetime | None = None) -> CutResult:
    """Close every digest window that has ended and holds matches (the sender calls this)."""
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
        digest = store.cut_digest(digest_alert(sub_id, end), before=end, max_members=MAX_DIGEST_ITEMS)
        if digest is not None:
            result.digests.append(digest)
            log.info("digest_cut", alert_id=digest.id, subscription_id=sub_id, window_end=iso(end))
    return result


def digest_items(store: DigestItemStore, digest: Alert) -> list[tuple[Alert, Article]]:
    """The digest's members with their articles (a member whose article was deleted is left out)."""
    items = []
    for member in store.digest_members(digest.id):
        try:
            items.append((member, store.get_article(member.article_id)))
        except NotFound:
            continue
    return items
