"""Feeds, their fetch state, seen entries and WebSub subscriptions in SQL (`FeedStore`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from ingest.errors import NotFound, StoreError
from ingest.models import Feed, WebSubSubscription, utcnow
from ingest.store.sql.core import Cursor, SQLCore, chunks, marks

FEED_COLS = (
    "id, url, title, interval, etag, last_modified, status, last_polled_at, last_success_at, "
    "last_error, consecutive_errors, next_poll_at, created_at, redirect_url, redirect_count, "
    "muted_reason, previous_urls, schedule_interval, schedule_reason, last_entry_at, "
    "entry_interval, last_status, fulltext"
)
# A never-polled feed's place in the claim order: before every time (as the `feeds_claim` index has it).
NEVER = {"sqlite": "''", "postgresql": "'-infinity'::timestamptz"}
WEBSUB_COLS = "feed_id, hub, topic, secret, state, lease_until, lease_seconds, last_error, updated_at"


def upsert_seen(cur: Cursor, ts: Any, feed_id: int, hashes: Mapping[str, str]) -> None:
    """Mark entries seen with their content hash (insert, or update the hash) inside `cur`'s transaction."""
    items = list(hashes.items())
    for part in chunks(items):
        params = [v for key, digest in part for v in (feed_id, key, ts, digest)]
        cur.execute(
            f"INSERT INTO seen_entries (feed_id, entry_key, seen_at, content_hash) "
            f"VALUES {marks(len(part), 4)} ON CONFLICT (feed_id, entry_key) "
            "DO UPDATE SET content_hash = excluded.content_hash, seen_at = excluded.seen_at",
            params,
        )


class SQLFeeds(SQLCore):
    """The feeds, seen_entries and websub tables."""

    def _feed(self, r: Sequence[Any]) -> Feed:
        return Feed(
            id=int(r[0]),
            url=r[1],
            title=r[2],
            interval=r[3],
            etag=r[4],
            last_modified=r[5],
            status=r[6],
            last_polled_at=self._dt(r[7]),
            last_success_at=self._dt(r[8]),
            last_error=r[9],
            consecutive_errors=int(r[10]),
            next_poll_at=self._dt(r[11]),
            created_at=self._dt(r[12]),
            redirect_url=r[13],
            redirect_count=int(r[14] or 0),
            muted_reason=r[15],
            previous_urls=tuple(json.loads(r[16] or "[]")),
            schedule_interval=r[17],
            schedule_reason=r[18],
            last_entry_at=self._dt(r[19]),
            entry_interval=r[20],
            last_status=r[21],
            fulltext=bool(r[22]),
        )

    def _feeds_where(self, where: str, params: Sequence[Any], tail: str = "") -> list[Feed]:
        with self._read() as cur:
            cur.execute(f"SELECT {FEED_COLS} FROM feeds WHERE {where} {tail}", params)
            return [self._feed(r) for r in cur.fetchall()]

    def add_feed(
        self, url: str, *, interval: int | None = None, title: str | None = None, fulltext: bool = False
    ) -> Feed:
        """Add a feed, or return the existing one with that URL (`fulltext=True` also switches it on)."""
        with self._write() as cur:
            cur.execute(
                "INSERT INTO feeds (url, title, interval, created_at, fulltext) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (url) DO NOTHING",
                (url, title, interval, self._ts(utcnow()), fulltext),
            )
            if fulltext:
                cur.execute("UPDATE feeds SET fulltext = ? WHERE url = ?", (True, url))
            cur.execute(f"SELECT {FEED_COLS} FROM feeds WHERE url = ?", (url,))
            return self._feed(cur.fetchone())

    def get_feed(self, feed_id: int) -> Feed:
        found = self._feeds_where("id = ?", (feed_id,))
        if not found:
            raise NotFound(f"no feed with id {feed_id}")
        return found[0]

    def find_feed_by_url(self, url: str) -> Feed | None:
        found = self._feeds_where("url = ?", (url,))
        return found[0] if found else None

    def list_feeds(self) -> list[Feed]:
        return self._feeds_where("1 = 1", (), "ORDER BY id")

    def list_feeds_page(self, *, limit: int, after_id: int | None = None) -> list[Feed]:
        """Feeds by id, the first `limit` after `after_id`."""
        return self._feeds_where(
            "id > ?", (after_id if after_id is not None else -1, limit), "ORDER BY id LIMIT ?"
        )

    def remove_feed(self, feed_id: int) -> None:
        """Remove the feed and its seen keys; its stored articles stay (they carry the feed URL)."""
        with self._write() as cur:
            cur.execute("DELETE FROM feeds WHERE id = ?", (feed_id,))
            if cur.rowcount == 0:
                raise NotFound(f"no feed with id {feed_id}")

    def due_feeds(self, now: datetime) -> list[Feed]:
        """Active feeds whose next poll time has come (never-polled first, then most overdue)."""
        return self._feeds_where(
            "status = 'active' AND (next_poll_at IS NULL OR next_poll_at <= ?)",
            (self._ts(now),),
            "ORDER BY next_poll_at IS NOT NULL, next_poll_at, id",
        )

    def record_fetch(self, feed: Feed, *, owner: str | None = None) -> bool:
        """Persist the fetch-state fields of `feed` and clear its lease; False if `owner` lost the lease.

        With `owner`, the row is written only while that poller still holds the feed's lease (one
        whose lease expired and was taken over writes nothing); without, it is written whatever
        the lease (`ingest feeds refresh`), and a poller still fetching it will write nothing.
        """
        [written] = self.record_fetches([feed], owner=owner)
        if not written and owner is None:
            raise NotFound(f"no feed with id {feed.id}")
        return written

    def record_fetches(self, feeds: Sequence[Feed], *, owner: str | None = None) -> list[bool]:
        """`record_fetch` for many feeds in one transaction (PostgreSQL: one pipelined round trip for
        all the statements); for each feed, whether its row was written."""
        if not feeds:
            return []
        held = " AND lease_owner = ?" if owner is not None else ""
        with self._write() as cur:
            found = self._returning_each(
                cur,
                "UPDATE feeds SET title = ?, etag = ?, last_modified = ?, status = ?, last_polled_at = ?, "
                "last_success_at = ?, last_error = ?, consecutive_errors = ?, next_poll_at = ?, "
                "redirect_url = ?, redirect_count = ?, muted_reason = ?, schedule_interval = ?, "
                "schedule_reason = ?, last_entry_at = ?, entry_interval = ?, last_status = ?, "
                f"lease_owner = NULL, lease_until = NULL WHERE id = ?{held} RETURNING id",
                [(*self._state(feed), *([owner] if owner is not None else [])) for feed in feeds],
            )
        return [row is not None for row in found]

    def _state(self, feed: Feed) -> tuple[Any, ...]:
        """The fetch-state columns of `record_fetches`, then the id."""
        return (
            feed.title,
            feed.etag,
            feed.last_modified,
            feed.status,
            self._ts(feed.last_polled_at),
            self._ts(feed.last_success_at),
            feed.last_error,
            feed.consecutive_errors,
            self._ts(feed.next_poll_at),
            feed.redirect_url,
            feed.redirect_count,
            feed.muted_reason,
            feed.schedule_interval,
            feed.schedule_reason,
            self._ts(feed.last_entry_at),
            feed.entry_interval,
            feed.last_status,
            feed.id,
        )

    # -- claims: several pollers share the feeds ------------------------------
    def claim_due_feeds(self, now: datetime, owner: str, limit: int, lease_seconds: float) -> list[Feed]:
        """Lease to `owner` up to `limit` due feeds no live lease holds, most overdue first."""
        due = f"COALESCE(next_poll_at, {NEVER[self.dialect]})"  # the `feeds_claim` index (migration 9)
        return self._claim(f"{due} <= ?", (self._ts(now),), f"{due}, id", now, owner, limit, lease_seconds)

    def claim_active_feeds(
        self, after_id: int, now: datetime, owner: str, limit: int, lease_seconds: float
    ) -> list[Feed]:
        """Lease to `owner` up to `limit` active feeds with an id above `after_id`, due or not, by id."""
        return self._claim("id > ?", (after_id,), "id", now, owner, limit, lease_seconds)

    def _claim(self, where: str, params: Sequence[Any], order: str, now: datetime, owner: str,
               limit: int, lease_seconds: float) -> list[Feed]:  # fmt: skip
        """One statement: PostgreSQL skips rows another claim is locking; SQLite holds the write lock."""
        lock = " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""
        until = now + timedelta(seconds=lease_seconds)
        with self._statement() as cur:
            cur.execute(
                "UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE id IN (SELECT id FROM feeds "
                f"WHERE status = 'active' AND {where} AND (lease_until IS NULL OR lease_until < ?) "
                f"ORDER BY {order} LIMIT ?{lock}) RETURNING {FEED_COLS}",
                (owner, self._ts(until), *params, self._ts(now), limit),
            )
            return [self._feed(r) for r in cur.fetchall()]

    def renew_feeds(self, owner: str, ids: Sequence[int], now: datetime, lease_seconds: float) -> int:
        """Extend to `now + lease_seconds` the leases `owner` still holds on `ids` (not fetched yet)."""
        until = self._ts(now + timedelta(seconds=lease_seconds))
        renewed = 0
        with self._write() as cur:
            for part in chunks(list(ids)):
                cur.execute(
                    f"UPDATE feeds SET lease_until = ? WHERE id IN ({marks(len(part))}) AND lease_owner = ?",
                    (until, *part, owner),
                )
                renewed += cur.rowcount
        return renewed

    def release_feeds(self, owner: str, ids: Sequence[int], *, next_poll_at: datetime | None = None) -> int:
        """Give back leases `owner` holds (feeds not fetched), optionally due again only at `next_poll_at`."""
        later = ", next_poll_at = ?" if next_poll_at is not None else ""
        extra = [self._ts(next_poll_at)] if next_poll_at is not None else []
        released = 0
        with self._write() as cur:
            for part in chunks(list(ids)):
                cur.execute(
                    f"UPDATE feeds SET lease_owner = NULL, lease_until = NULL{later} "
                    f"WHERE id IN ({marks(len(part))}) AND lease_owner = ?",
                    (*extra, *part, owner),
                )
                released += cur.rowcount
        return released

    def edit_feed(self, feed_id: int, *, interval: int | None, fulltext: bool, title: str | None) -> Feed:
        """Set what the operator chose (interval, full-text fetching, title); the next poll is now."""
        with self._write() as cur:
            cur.execute(
                "UPDATE feeds SET interval = ?, fulltext = ?, title = ?, next_poll_at = NULL WHERE id = ?",
                (interval, fulltext, title, feed_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no feed with id {feed_id}")
        return self.get_feed(feed_id)

    def set_feed_status(self, feed_id: int, status: str, reason: str | None = None) -> Feed:
        """Mute (`gone`, `disabled`) or re-enable (`active`: errors reset, due now) a feed."""
        with self._write() as cur:
            if status == "active":
                cur.execute(
                    "UPDATE feeds SET status = 'active', muted_reason = NULL, "
                    "consecutive_errors = 0, next_poll_at = NULL WHERE id = ?",
                    (feed_id,),
                )
            else:
                cur.execute(
                    "UPDATE feeds SET status = ?, muted_reason = ? WHERE id = ?", (status, reason, feed_id)
                )
            if cur.rowcount == 0:
                raise NotFound(f"no feed with id {feed_id}")
        return self.get_feed(feed_id)

    def move_feed(self, feed_id: int, new_url: str) -> Feed:
        """Give the feed a new URL (a permanent redirect); its id, articles and seen entries stay."""
        feed = self.get_feed(feed_id)
        history = [*feed.previous_urls, feed.url][-20:]
        with self._write() as cur:
            cur.execute("SELECT id FROM feeds WHERE url = ?", (new_url,))
            if cur.fetchone() is not None:
                raise StoreError(f"cannot move feed {feed_id} to {new_url}: another feed has that URL")
            cur.execute(
                "UPDATE feeds SET url = ?, previous_urls = ?, redirect_url = NULL, "
                "redirect_count = 0 WHERE id = ?",
                (new_url, json.dumps(history), feed_id),
            )
        return self.get_feed(feed_id)

    # -- seen entries ------------------------------------------------------
    def seen_entry_hashes(self, feed_id: int, keys: Sequence[str]) -> dict[str, str | None]:
        """For the keys of `keys` this feed has queued before: the content hash queued last (or None)."""
        found: dict[str, str | None] = {}
        with self._read() as cur:
            for part in chunks(list(dict.fromkeys(keys))):
                cur.execute(
                    "SELECT entry_key, content_hash FROM seen_entries WHERE feed_id = ? "
                    f"AND entry_key IN ({marks(len(part))})",
                    (feed_id, *part),
                )
                found.update((r[0], r[1]) for r in cur.fetchall())
        return found

    # -- WebSub --------------------------------------------------------------
    def _websub(self, r: Sequence[Any]) -> WebSubSubscription:
        return WebSubSubscription(
            feed_id=int(r[0]),
            hub=r[1],
            topic=r[2],
            secret=r[3],
            state=r[4],
            lease_until=self._dt(r[5]),
            lease_seconds=r[6],
            last_error=r[7],
            updated_at=self._dt(r[8]),
        )

    def get_websub(self, feed_id: int) -> WebSubSubscription | None:
        with self._read() as cur:
            cur.execute(f"SELECT {WEBSUB_COLS} FROM websub WHERE feed_id = ?", (feed_id,))
            row = cur.fetchone()
        return self._websub(row) if row else None

    def save_websub(self, sub: WebSubSubscription) -> None:
        """Insert or replace the feed's subscription."""
        values = (
            sub.feed_id,
            sub.hub,
            sub.topic,
            sub.secret,
            sub.state,
            self._ts(sub.lease_until),
            sub.lease_seconds,
            sub.last_error,
            self._ts(utcnow()),
        )
        with self._write() as cur:
            cur.execute(
                f"INSERT INTO websub ({WEBSUB_COLS}) VALUES ({marks(9)}) "
                "ON CONFLICT (feed_id) DO UPDATE SET hub = excluded.hub, topic = excluded.topic, "
                "secret = excluded.secret, state = excluded.state, "
                "lease_until = excluded.lease_until, lease_seconds = excluded.lease_seconds, "
                "last_error = excluded.last_error, updated_at = excluded.updated_at",
                values,
            )
