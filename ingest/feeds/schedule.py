"""When to poll a feed next, and why: pure functions of the feed, the fetch and the clock.

After a success the interval is, in order of precedence:

1. the feed's fixed `--interval`, if it has one (nothing else applies but jitter);
2. adaptive: half the median gap between the feed's newest entry dates (or, for undated
   feeds, between polls that found new entries), so a new entry waits on average a quarter
   of the publishing gap; a feed that has gone quiet for longer than its gaps slows down;
3. the default interval while nothing is known;

bounded by the minimum and maximum interval; then raised (up to the maximum) to what the
server asks for with `Cache-Control: max-age`, `Expires` or RSS `<ttl>`, and to the slow
fallback interval while a WebSub subscription pushes the content. Jitter of +-10 % keeps
feeds added together from being polled together.

After a transient error the delay doubles per consecutive error from one minute, capped at
the maximum interval (24 h by default), at least what a `Retry-After` asks (also capped).
A feed is never disabled by errors; only 410 Gone mutes it.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from ingest.models import Feed
from ingest.settings import Settings

FIRST_BACKOFF = 60.0
JITTER = 0.10
FIXED_JITTER = 0.05
MAX_DATES = 20  # newest entry dates considered for the publishing gap
EWMA_WEIGHT = 0.3


@dataclass(frozen=True)
class Bounds:
    """The scheduler's configuration, from settings."""

    min_interval: int = 120
    max_interval: int = 86400
    default_interval: int = 600
    websub_interval: int = 21600

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        low = min(settings.min_poll_interval, settings.max_poll_interval)
        return cls(
            min_interval=low,
            max_interval=settings.max_poll_interval,
            default_interval=settings.poll_interval,
            websub_interval=settings.websub_poll_interval,
        )


@dataclass(frozen=True)
class Decision:
    """Seconds until the next poll, when that is, and the reason in words."""

    interval: int
    next_at: datetime
    reason: str


def human(seconds: float) -> str:
    """`90` -> `1m30s`, `7200` -> `2h`, `93600` -> `1d2h`."""
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, total = divmod(total, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts[:2])


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def cache_hints(
    headers: Mapping[str, str], ttl_minutes: int | None, now: datetime
) -> list[tuple[float, str]]:
    """(seconds, source) for each freshness hint the response carries."""
    hints: list[tuple[float, str]] = []
    control = {
        part.strip().split("=", 1)[0].lower(): part.strip().partition("=")[2].strip('" ')
        for part in headers.get("cache-control", "").split(",")
        if part.strip()
    }
    max_age = control.get("max-age", "")
    if max_age.isdigit() and "no-cache" not in control and "no-store" not in control:
        hints.append((float(max_age), "Cache-Control max-age"))
    elif "expires" in headers and "max-age" not in control:
        expires = _http_date(headers.get("expires"))
        origin = _http_date(headers.get("date")) or now
        if expires and expires > origin:
            hints.append(((expires - origin).total_seconds(), "Expires"))
    if ttl_minutes:
        hints.append((ttl_minutes * 60.0, "RSS <ttl>"))
    return hints


def publishing_gap(dates: Sequence[datetime], now: datetime) -> tuple[float, int] | None:
    """Median seconds between the newest distinct entry dates (future dates ignored), and the count."""
    past = sorted({d for d in dates if d <= now + timedelta(minutes=5)}, reverse=True)[:MAX_DATES]
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(past)]
    gaps = [g for g in gaps if g > 0]
    return (statistics.median(gaps), len(gaps)) if gaps else None


def observe(
    feed: Feed, now: datetime, new_entries: int, dates: Sequence[datetime]
) -> tuple[datetime | None, int | None]:
    """Updated (last_entry_at, entry_interval) after a poll.

    With dated entries, the interval is their median gap and `last_entry_at` the newest date;
    without, both come from the polls that found new entries (a moving average of the gaps).
    """
    gap = publishing_gap(dates, now)
    if gap is not None:
        newest = max(d for d in dates if d <= now + timedelta(minutes=5))
        last = max(newest, feed.last_entry_at) if feed.last_entry_at else newest
        return last, round(gap[0])
    if not new_entries:
        return feed.last_entry_at, feed.entry_interval
    previous, interval = feed.last_entry_at, feed.entry_interval
    if previous is not None and now > previous:
        step = (now - previous).total_seconds() / new_entries
        interval = round(step if interval is None else (1 - EWMA_WEIGHT) * interval + EWMA_WEIGHT * step)
    return now, interval


def _jittered(seconds: float, spread: float, rng: random.Random | None) -> float:
    return seconds * (rng or random).uniform(1 - spread, 1 + spread)


def _adaptive(feed: Feed, now: datetime, dates: Sequence[datetime], bounds: Bounds) -> tuple[float, str]:
    """Half the publishing gap (from this document's dates, else as learnt), or the default."""
    gap = publishing_gap(dates, now)
    if gap is not None:
        seconds, basis = gap[0], f"median of {gap[1]} gaps between entry dates"
    elif feed.entry_interval:
        seconds, basis = float(feed.entry_interval), "learnt from earlier polls"
    else:
        return float(bounds.default_interval), "default interval (no publishing pattern known yet)"
    quiet = (now - feed.last_entry_at).total_seconds() if feed.last_entry_at else 0.0
    if quiet > 2 * seconds:
        return quiet / 2, (
            f"adaptive: publishes about every {human(seconds)} ({basis}) but quiet for "
            f"{human(quiet)}: half the quiet time"
        )
    return seconds / 2, f"adaptive: publishes about every {human(seconds)} ({basis}): half the gap"


def after_success(
    feed: Feed,
    now: datetime,
    *,
    bounds: Bounds,
    headers: Mapping[str, str] | None = None,
    ttl_minutes: int | None = None,
    dates: Sequence[datetime] = (),
    websub_active: bool = False,
    rng: random.Random | None = None,
) -> Decision:
    """The next poll after a 2xx or 304 (`dates`: the entry dates of the fetched document)."""
    if feed.interval:
        seconds = _jittered(feed.interval, FIXED_JITTER, rng)
        return Decision(
            round(seconds),
            now + timedelta(seconds=seconds),
            f"fixed interval {human(feed.interval)} (set on the feed)",
        )
    seconds, reason = _adaptive(feed, now, dates, bounds)
    if seconds < bounds.min_interval:
        seconds, reason = bounds.min_interval, f"{reason}; raised to the minimum {human(bounds.min_interval)}"
    elif seconds > bounds.max_interval:
        seconds, reason = bounds.max_interval, f"{reason}; capped at the maximum {human(bounds.max_interval)}"
    for hint, source in cache_hints(headers or {}, ttl_minutes, now):
        if hint > seconds:
            capped = min(hint, bounds.max_interval)
            note = f", capped at {human(capped)}" if capped < hint else ""
            seconds, reason = capped, f"{reason}; server asks {human(hint)} ({source}){note}"
    if websub_active and seconds < bounds.websub_interval:
        seconds = min(bounds.websub_interval, bounds.max_interval)
        reason = f"WebSub push active: slow fallback poll every {human(seconds)}"
    seconds = min(max(_jittered(seconds, JITTER, rng), bounds.min_interval), bounds.max_interval)
    return Decision(round(seconds), now + timedelta(seconds=seconds), reason)


def after_error(
    feed: Feed,
    now: datetime,
    *,
    bounds: Bounds,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The next poll after a transient error; `feed.consecutive_errors` already counts this one."""
    errors = max(1, feed.consecutive_errors)
    seconds = min(float(bounds.max_interval), FIRST_BACKOFF * 2 ** min(errors - 1, 30))
    reason = f"backoff after {errors} consecutive error{'s' if errors > 1 else ''}: {human(seconds)}"
    if seconds >= bounds.max_interval:
        reason += " (the maximum)"
    if retry_after and retry_after > seconds:
        capped = min(retry_after, float(bounds.max_interval))
        note = f", capped at {human(capped)}" if capped < retry_after else ""
        seconds, reason = capped, f"server asks Retry-After {human(retry_after)}{note}"
    seconds = min(_jittered(seconds, JITTER, rng), float(bounds.max_interval))
    if retry_after:
        seconds = max(seconds, min(retry_after, float(bounds.max_interval)))  # never earlier than asked
    return Decision(round(seconds), now + timedelta(seconds=seconds), reason)
