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

    def record_fetch(self, feed: Feed) -> None:
        """Persist the fetch-state fields of `feed` (etag, times, errors, next poll, title)."""
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
