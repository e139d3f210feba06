"""The scheduler's decisions, as pure functions of the feed, the response and the clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from ingest.feeds.schedule import (
    Bounds,
    after_error,
    after_success,
    cache_hints,
    human,
    observe,
    publishing_gap,
)
from ingest.models import Feed
from ingest.settings import Settings

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BOUNDS = Bounds(min_interval=120, max_interval=86400, default_interval=600, websub_interval=21600)
FEED = Feed(id=1, url="https://a.example/rss")


def hourly(count: int, every: timedelta = timedelta(hours=1), start: datetime = NOW) -> list[datetime]:
    return [start - i * every for i in range(count)]


def near(value: float, target: float, spread: float = 0.101) -> bool:
    return target * (1 - spread) <= value <= target * (1 + spread)


def test_default_interval_when_nothing_is_known() -> None:
    """A feed without dates or history is polled at the default interval."""
    decision = after_success(FEED, NOW, bounds=BOUNDS, rng=random.Random(1))
    assert near(decision.interval, 600)
    assert "default interval" in decision.reason
    assert abs((decision.next_at - NOW).total_seconds() - decision.interval) < 1


def test_adaptive_interval_is_half_the_median_publishing_gap() -> None:
    """An hourly feed is polled about every 30 minutes, and the reason says why."""
    decision = after_success(FEED, NOW, bounds=BOUNDS, dates=hourly(10), rng=random.Random(2))
    assert near(decision.interval, 1800)
    assert "publishes about every 1h" in decision.reason and "median of 9 gaps" in decision.reason


def test_adaptive_interval_raised_to_the_minimum() -> None:
    """A feed publishing every minute is still polled no more often than the minimum."""
    decision = after_success(FEED, NOW, bounds=BOUNDS, dates=hourly(10, timedelta(minutes=1)))
    assert decision.interval >= 120
    assert "raised to the minimum 2m" in decision.reason


def test_adaptive_interval_capped_at_the_maximum() -> None:
    """A feed publishing monthly is polled at least daily."""
    decision = after_success(FEED, NOW, bounds=BOUNDS, dates=hourly(5, timedelta(days=30)))
    assert decision.interval <= 86400
    assert "capped at the maximum 1d" in decision.reason


def test_quiet_feed_slows_down() -> None:
    """A feed that published hourly but has been silent for two days is polled about daily."""
    dates = hourly(10, start=NOW - timedelta(days=2))
    learnt = Feed(id=1, url=FEED.url, last_entry_at=dates[0], entry_interval=3600)
    decision = after_success(learnt, NOW, bounds=BOUNDS, dates=dates, rng=random.Random(3))
    assert near(decision.interval, 86400)
    assert "quiet for 2d" in decision.reason


def test_fixed_interval_overrides_everything() -> None:
    """A per-feed interval wins over publishing pattern and cache headers."""
    fixed = Feed(id=1, url=FEED.url, interval=900)
    decision = after_success(
        fixed,
        NOW,
        bounds=BOUNDS,
        dates=hourly(10),
        headers={"cache-control": "max-age=7200"},
        ttl_minutes=300,
    )
    assert near(decision.interval, 900, 0.051)
    assert decision.reason == "fixed interval 15m (set on the feed)"


def test_cache_control_max_age_is_honoured() -> None:
    """max-age longer than the adaptive interval becomes the interval."""
    decision = after_success(FEED, NOW, bounds=BOUNDS, headers={"cache-control": "public, max-age=3600"})
    assert near(decision.interval, 3600)
    assert "server asks 1h (Cache-Control max-age)" in decision.reason


def test_server_hints_are_capped_at_the_maximum() -> None:
    """A server asking for a week gets the maximum interval, and the reason says so."""
    decision = after_success(FEED, NOW, bounds=BOUNDS, headers={"cache-control": "max-age=604800"})
    assert decision.interval <= 86400
    assert "capped at 1d" in decision.reason


def test_expires_counts_from_the_date_header() -> None:
    """Expires minus Date (not minus our clock) is the freshness the server grants."""
    headers = {"date": "Wed, 01 May 2024 10:00:00 GMT", "expires": "Wed, 01 May 2024 12:00:00 GMT"}
    assert cache_hints(headers, None, NOW) == [(7200.0, "Expires")]


def test_rss_ttl_is_honoured() -> None:
    """An RSS <ttl> of 60 minutes makes the interval an hour."""
    decision = after_success(FEED, NOW, bounds=BOUNDS, ttl_minutes=60)
    assert near(decision.interval, 3600)
    assert "RSS <ttl>" in decision.reason


def test_no_cache_gives_no_hint() -> None:
    """Cache-Control no-cache with a max-age is not read as a freshness hint."""
    assert cache_hints({"cache-control": "no-cache, max-age=9999"}, None, NOW) == []


def test_websub_makes_polling_a_slow_fallback() -> None:
    """With an active push subscription the feed is polled at the fallback interval."""
    decision = after_success(FEED, NOW, bounds=BOUNDS, dates=hourly(10), websub_active=True)
    assert near(decision.interval, 21600)
    assert "WebSub" in decision.reason


def test_jitter_spreads_feeds_apart() -> None:
    """Feeds with the same pattern get different next-poll times within +-10 %."""
    intervals = {
        after_success(FEED, NOW, bounds=BOUNDS, rng=random.Random(seed)).interval for seed in range(20)
    }
    assert len(intervals) > 5
    assert all(540 <= i <= 660 for i in intervals)


def test_backoff_doubles_from_one_minute() -> None:
    """Consecutive errors wait about 1, 2, 4, 8 minutes."""
    waits = [
        after_error(
            Feed(id=1, url=FEED.url, consecutive_errors=n), NOW, bounds=BOUNDS, rng=random.Random(n)
        ).interval
        for n in (1, 2, 3, 4)
    ]
    assert [near(w, t) for w, t in zip(waits, (60, 120, 240, 480), strict=True)] == [True] * 4
    assert (
        "backoff after 3 consecutive errors"
        in after_error(Feed(id=1, url=FEED.url, consecutive_errors=3), NOW, bounds=BOUNDS).reason
    )


def test_backoff_is_capped_and_never_gives_up() -> None:
    """After 500 errors the feed is still scheduled, at most a day later."""
    decision = after_error(Feed(id=1, url=FEED.url, consecutive_errors=500), NOW, bounds=BOUNDS)
    assert 0 < decision.interval <= 86400
    assert decision.next_at <= NOW + timedelta(days=1)
    assert "(the maximum)" in decision.reason


def test_retry_after_longer_than_backoff_wins() -> None:
    """Retry-After: 3600 on the first error waits at least an hour."""
    decision = after_error(
        Feed(id=1, url=FEED.url, consecutive_errors=1), NOW, bounds=BOUNDS, retry_after=3600
    )
    assert 3600 <= decision.interval <= 3960
    assert decision.reason == "server asks Retry-After 1h"


def test_retry_after_is_capped() -> None:
    """A Retry-After of a month waits the maximum interval, no longer."""
    decision = after_error(
        Feed(id=1, url=FEED.url, consecutive_errors=1), NOW, bounds=BOUNDS, retry_after=30 * 86400
    )
    assert decision.interval == 86400
    assert "capped at 1d" in decision.reason


def test_observe_learns_the_gap_from_dates_and_from_polls() -> None:
    """Dated entries give the median gap; undated new entries give a moving average of poll gaps."""
    last, interval = observe(FEED, NOW, 3, hourly(6, timedelta(hours=2)))
    assert (last, interval) == (NOW, 7200)
    seen = Feed(id=1, url=FEED.url, last_entry_at=NOW - timedelta(hours=4), entry_interval=3600)
    last, interval = observe(seen, NOW, 1, [])
    assert last == NOW and interval == round(0.7 * 3600 + 0.3 * 14400)
    assert observe(seen, NOW, 0, []) == (seen.last_entry_at, 3600)


def test_publishing_gap_ignores_future_dates() -> None:
    """Entries dated next year do not shrink the gap."""
    dates = [*hourly(4), NOW + timedelta(days=365)]
    assert publishing_gap(dates, NOW) == (3600.0, 3)


def test_bounds_come_from_settings() -> None:
    """INGEST_MIN/MAX_POLL_INTERVAL and INGEST_WEBSUB_POLL_INTERVAL configure the scheduler."""
    settings = Settings.from_env(
        {
            "INGEST_MIN_POLL_INTERVAL": "300",
            "INGEST_MAX_POLL_INTERVAL": "3600",
            "INGEST_WEBSUB_POLL_INTERVAL": "1800",
            "INGEST_POLL_INTERVAL": "900",
        }
    )
    assert Bounds.from_settings(settings) == Bounds(300, 3600, 900, 1800)


@pytest.mark.parametrize(("seconds", "text"), [(45, "45s"), (90, "1m30s"), (7200, "2h"), (93600, "1d2h")])
def test_human_durations(seconds: int, text: str) -> None:
    """Durations in reasons read like 1m30s, 2h, 1d2h."""
    assert human(seconds) == text
