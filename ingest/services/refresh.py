"""Refreshing one feed: what a fetch's outcome does to the feed's state and to the queue.

The poller loop fetches; this service decides and records, without a loop: the outcome
counted, a permanent redirect followed after MOVE_AFTER polls saw it, 410 Gone muting the
feed, the document parsed, new and changed entries accepted (`Intake`), and the next poll
time chosen by `ingest.feeds.schedule`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from ingest.errors import FetchError, ParseError, StoreError
from ingest.feeds import schedule, websub
from ingest.log import get_logger
from ingest.models import Feed, FetchResult, ParsedFeed, utcnow
from ingest.parse import parse_feed
from ingest.services.intake import Intake
from ingest.services.ports import Metrics
from ingest.settings import Settings
from ingest.store.feeds import FeedStore

log = get_logger(__name__)

MOVE_AFTER = 3  # consecutive polls that must see the same permanent redirect before the feed moves
WRITE_BATCH = 200  # a poller's fetch states written together: one transaction, one round trip
Bound = structlog.typing.FilteringBoundLogger


@dataclass
class Refreshed:
    """What one refresh did: counts for the poll summary, and the parsed feed after a 200."""

    counts: dict[str, int] = field(default_factory=dict)
    parsed: ParsedFeed | None = None


class Refresher:
    """Records fetch outcomes; one instance per process, safe to call from several threads.

    A poller's records (`owner` given) are held and written WRITE_BATCH at a time, in one
    transaction (a transaction per feed cost more than the rest of a 304 poll); the poller calls
    `flush` when a batch of fetches is done. A record by hand is written at once.
    """

    def __init__(self, store: FeedStore, intake: Intake, metrics: Metrics, settings: Settings) -> None:
        self.store = store
        self.intake = intake
        self.metrics = metrics
        self.settings = settings
        self.bounds = schedule.Bounds.from_settings(settings)
        self._held: dict[str, list[Feed]] = {}
        self._lock = threading.Lock()

    def refresh(
        self, feed: Feed, outcome: FetchResult | FetchError, seconds: float | None = None, *,
        owner: str | None = None,
    ) -> Refreshed:  # fmt: skip
        """Record one fetch's outcome for `feed`; `owner`: the poller whose lease the record needs
        (a poller that lost it records nothing: `lost` is counted), None for a refresh by hand."""
        bound = log.bind(feed_id=feed.id, feed_url=feed.url)
        self._count(outcome, seconds)
        if isinstance(outcome, FetchError):
            return self._failed(feed, outcome, bound, owner)
        done = Refreshed()
        feed = self._follow_redirect(feed, outcome, bound, done)
        if outcome.not_modified:
            self._record_success(feed, outcome, None, 0, owner, done)
            done.counts["not_modified"] = 1
            bound.info("feed_polled", status=304, entries=0, new=0)
            return done
        try:
            parsed = parse_feed(
                outcome, feed_id=feed.id, feed_url=feed.url, max_entries=self.settings.max_entries
            )
        except ParseError as exc:
            self._record_error(feed, str(exc), None, outcome.status, bound, owner, done)
            done.counts["errors"] = 1
            return done
        accepted = self.intake.accept(feed, parsed.entries)
        self._record_success(feed, outcome, parsed, accepted.new, owner, done)
        done.parsed = parsed
        done.counts.update(ok=1, entries=len(parsed.entries), new=accepted.new, updated=accepted.updated,
                           jobs=accepted.jobs)  # fmt: skip
        bound.info("feed_polled", status=outcome.status, entries=len(parsed.entries), new=accepted.new,
                   updated=accepted.updated, warnings=parsed.warnings or None)  # fmt: skip
        return done

    def _count(self, outcome: FetchResult | FetchError, seconds: float | None) -> None:
        if isinstance(outcome, FetchError):
            label = "gone" if outcome.status == 410 else "error"
        else:
            label = "not_modified" if outcome.not_modified else "ok"
        self.metrics.count("ingest_feeds_polled_total", {"outcome": label})
        if seconds is not None:
            self.metrics.observe("ingest_fetch_seconds", seconds)

    def _failed(self, feed: Feed, error: FetchError, bound: Bound, owner: str | None) -> Refreshed:
        if error.status == 410:
            done = Refreshed({"errors": 1, "muted": 1})
            self._mute_gone(feed, error, bound, owner, done)
            return done
        done = Refreshed({"errors": 1})
        self._record_error(feed, error.reason, error.retry_after, error.status, bound, owner, done)
        return done

    def _record(self, feed: Feed, owner: str | None, done: Refreshed) -> None:
        """Write the feed's state (a poller's: with the next WRITE_BATCH); a poller whose lease was
        taken over writes nothing (counted `lost`)."""
        if owner is None:
            self.store.record_fetch(feed)
            return
        with self._lock:
            held = self._held.setdefault(owner, [])
            held.append(feed)
            if len(held) < WRITE_BATCH:
                return
            del self._held[owner]
        lost = self._write(owner, held)
        if lost:
            done.counts["lost"] = lost

    def flush(self) -> int:
        """Write the states held for pollers; returns how many were not (their lease was lost)."""
        with self._lock:
            held, self._held = self._held, {}
        return sum(self._write(owner, feeds) for owner, feeds in held.items())

    def _write(self, owner: str, feeds: list[Feed]) -> int:
        written = self.store.record_fetches(feeds, owner=owner)
        lost = [feed for feed, ok in zip(feeds, written, strict=True) if not ok]
        for feed in lost:
            log.warning("feed_lease_lost", feed_id=feed.id, feed_url=feed.url, owner=owner)
        return len(lost)

    def _follow_redirect(self, feed: Feed, result: FetchResult, bound: Bound, done: Refreshed) -> Feed:
        """Count consecutive polls that see the same permanent redirect; at MOVE_AFTER, move the feed."""
        target = result.permanent_redirect
        if not target:
            return replace(feed, redirect_url=None, redirect_count=0)
        count = feed.redirect_count + 1 if feed.redirect_url == target else 1
        if count < MOVE_AFTER:
            return replace(feed, redirect_url=target, redirect_count=count)
        try:
            moved = self.store.move_feed(feed.id, target)
        except StoreError as exc:
            bound.warning("feed_move_refused", target=target, error=str(exc))
            return replace(feed, redirect_url=target, redirect_count=count)
        done.counts["moved"] = 1
        bound.info("feed_moved", new_url=target, after_polls=count)
        return replace(feed, url=moved.url, previous_urls=moved.previous_urls, redirect_url=None,
                       redirect_count=0)  # fmt: skip

    def _record_success(self, feed: Feed, result: FetchResult, parsed: ParsedFeed | None, new: int,
                        owner: str | None, done: Refreshed) -> None:  # fmt: skip
        now = utcnow()
        dates = [e.published_at for e in parsed.entries if e.published_at] if parsed else []
        last_entry_at, entry_interval = schedule.observe(feed, now, new, dates)
        learnt = replace(feed, last_entry_at=last_entry_at, entry_interval=entry_interval)
        active = self.settings.public_url and websub.is_active(self.store.get_websub(feed.id), now)
        decision = schedule.after_success(
            learnt, now, bounds=self.bounds, headers=result.headers, dates=dates,
            websub_active=bool(active), ttl_minutes=parsed.ttl_minutes if parsed else None,
        )  # fmt: skip
        self._record(replace(
            learnt, title=(parsed.title if parsed and parsed.title else feed.title),
            etag=result.etag or feed.etag, last_modified=result.last_modified or feed.last_modified,
            last_polled_at=now, last_success_at=now, last_error=None, consecutive_errors=0,
            next_poll_at=decision.next_at, schedule_interval=decision.interval,
            schedule_reason=decision.reason, last_status=result.status,
        ), owner, done)  # fmt: skip

    def _record_error(self, feed: Feed, message: str, retry_after: float | None, status: int | None,
                      bound: Bound, owner: str | None, done: Refreshed) -> None:  # fmt: skip
        """Back off exponentially per feed, never disabling it."""
        now = utcnow()
        failing = replace(feed, consecutive_errors=feed.consecutive_errors + 1)
        decision = schedule.after_error(failing, now, bounds=self.bounds, retry_after=retry_after)
        self._record(replace(
            failing, last_polled_at=now, last_error=message, next_poll_at=decision.next_at,
            schedule_interval=decision.interval, schedule_reason=decision.reason,
            last_status=status if status is not None else feed.last_status,
        ), owner, done)  # fmt: skip
        bound.warning("feed_error", error=message, consecutive_errors=failing.consecutive_errors,
                      retry_in=decision.interval)  # fmt: skip

    def _mute_gone(self, feed: Feed, error: FetchError, bound: Bound, owner: str | None,
                   done: Refreshed) -> None:  # fmt: skip
        """410 Gone: stop polling (status `gone`) until someone runs `ingest feeds enable`."""
        now: datetime = utcnow()
        reason = (
            f"HTTP 410 Gone on {now.date().isoformat()}: the server says the feed was removed for good; "
            f"`ingest feeds enable {feed.id}` resumes polling"
        )
        self._record(replace(
            feed, status="gone", muted_reason=reason, last_polled_at=now, last_error=error.reason,
            consecutive_errors=feed.consecutive_errors + 1, next_poll_at=None, schedule_interval=None,
            schedule_reason="muted: 410 Gone", last_status=410,
        ), owner, done)  # fmt: skip
        bound.warning("feed_gone", error=error.reason)
