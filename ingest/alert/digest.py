"""Digest mode: a subscription's matches held, then sent as one webhook every N minutes.

A match of a digest subscription is recorded in the outbox like any other
(unique per subscription and story) and then `held`. When its window closes
(windows are aligned on multiples of N minutes since the epoch), the held
alerts become the members of one digest alert: its own outbox row and
webhook-id (`alert_id(subscription, "digest:<window end>")`), delivered,
retried, dead-lettered and replayed exactly like a single alert. Each story
is in one digest only, because each (subscription, story) alert is. Cutting is
`ingest.services.digests`; the body is `ingest.alert.payload.build_digest_payload`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.models import DIGEST_PREFIX, Alert, alert_id, iso

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
