"""The feeds aggregate: feeds and their fetch state, the entries each feed has queued, WebSub.

Used by the poller, the WebSub callbacks and the feed commands of the CLI and the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ingest.models import Feed, WebSubSubscription


class FeedStore(Protocol):
    def add_feed(
        self, url: str, *, interval: int | None = None, title: str | None = None, fulltext: bool = False
    ) -> Feed:
        """Add a feed, or return the existing one with that URL (`fulltext=True` also switches it on)."""
        ...

    def get_feed(self, feed_id: int) -> Feed: ...

    def find_feed_by_url(self, url: str) -> Feed | None: ...

    def list_feeds(self) -> list[Feed]: ...

    def list_feeds_page(self, *, limit: int, after_id: int | None = None) -> list[Feed]:
        """Feeds by id, the first `limit` after `after_id`."""
        ...

    def remove_feed(self, feed_id: int) -> None: ...

    def due_feeds(self, now: datetime) -> list[Feed]:
        """Active feeds whose next poll time has come (or that were never polled)."""
        ...

    def record_fetch(self, feed: Feed, *, owner: str | None = None) -> bool:
        """Persist the fetch-state fields of `feed` (etag, times, errors, next poll, title), clearing
        its lease. With `owner`: only while that poller still holds the lease (False if it lost it);
        without: whatever the lease (a refresh by hand)."""
        ...

    def record_fetches(self, feeds: Sequence[Feed], *, owner: str | None = None) -> list[bool]:
        """`record_fetch` for many feeds at once, in one transaction; for each, whether it was written."""
        ...

    # -- claims: any number of pollers share the feeds -------------------------
    def claim_due_feeds(self, now: datetime, owner: str, limit: int, lease_seconds: float) -> list[Feed]:
        """Lease to `owner`, in one statement, up to `limit` due active feeds whose lease (if any)
        ended, most overdue first; no other claim gets them until the lease ends or is released."""
        ...

    def claim_active_feeds(
        self, after_id: int, now: datetime, owner: str, limit: int, lease_seconds: float
    ) -> list[Feed]:
        """Like `claim_due_feeds`, but every active feed with an id above `after_id`, by id (`--once`)."""
        ...

    def renew_feeds(self, owner: str, ids: Sequence[int], now: datetime, lease_seconds: float) -> int:
        """Extend the leases `owner` still holds on `ids` (claimed, waiting for their host) to
        `now + lease_seconds`; the number renewed."""
        ...

    def release_feeds(self, owner: str, ids: Sequence[int], *, next_poll_at: datetime | None = None) -> int:
        """Give back the leases `owner` holds on `ids` (not fetched); with `next_poll_at`, due only then."""
        ...

    def edit_feed(self, feed_id: int, *, interval: int | None, fulltext: bool, title: str | None) -> Feed:
        """Set what the operator chose (interval, full-text fetching, title); the next poll is now."""
        ...

    def set_feed_status(self, feed_id: int, status: str, reason: str | None = None) -> Feed:
        """Mute (`gone`, `disabled`) or re-enable (`active`: errors reset, due now) a feed."""
        ...

    def move_feed(self, feed_id: int, new_url: str) -> Feed:
        """Give the feed a new URL (permanent redirect), keeping id, articles, seen entries; old URL kept."""
        ...

    # -- entries already seen (poller-side identity) -----------------------
    def seen_entry_hashes(self, feed_id: int, keys: Sequence[str]) -> dict[str, str | None]:
        """For the keys of `keys` this feed has queued before: the content hash queued last (or None)."""
        ...

    # -- WebSub --------------------------------------------------------------
    def get_websub(self, feed_id: int) -> WebSubSubscription | None: ...

    def save_websub(self, sub: WebSubSubscription) -> None:
        """Insert or replace the feed's WebSub subscription."""
        ...
