"""Redis-backed Prometheus metrics: recorded by any process, rendered by the API."""

from __future__ import annotations

import time

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from ingest import metrics
from ingest.metrics import QueueStat

PREFIX = "test:"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counters_add_up_across_calls_and_pipelines(redis_client: redis.Redis) -> None:
    """record() adds to one Redis hash per metric, directly or queued on a caller's pipeline."""
    metrics.record(redis_client, PREFIX, "ingest_feeds_polled_total", {"outcome": "ok"})
    metrics.record(redis_client, PREFIX, "ingest_feeds_polled_total", {"outcome": "ok"}, 2)
    with redis_client.pipeline() as pipe:
        metrics.record(pipe, PREFIX, "ingest_feeds_polled_total", {"outcome": "error"})
        metrics.record(pipe, PREFIX, "ingest_articles_language_total", {"language": "de"}, 5)
        pipe.execute()
    got = samples(metrics.render(redis_client, PREFIX).decode())
    assert got[("ingest_feeds_polled_total", (("outcome", "ok"),))] == 3
    assert got[("ingest_feeds_polled_total", (("outcome", "error"),))] == 1
    assert got[("ingest_articles_language_total", (("language", "de"),))] == 5
    assert got[("ingest_entries_seen_total", ())] == 0  # unlabelled counters show from the start


def test_histogram_buckets_are_cumulative(redis_client: redis.Redis) -> None:
    """observe() fills one bucket; rendering makes buckets cumulative with sum and count."""
    for seconds in (0.01, 0.3, 0.3, 100.0):
        metrics.observe(redis_client, PREFIX, "ingest_delivery_seconds", seconds)
    got = samples(metrics.render(redis_client, PREFIX).decode())
    assert got[("ingest_delivery_seconds_bucket", (("le", "0.05"),))] == 1
    assert got[("ingest_delivery_seconds_bucket", (("le", "0.5"),))] == 3
    assert got[("ingest_delivery_seconds_bucket", (("le", "30.0"),))] == 3
    assert got[("ingest_delivery_seconds_bucket", (("le", "+Inf"),))] == 4
    assert got[("ingest_delivery_seconds_count", ())] == 4
    assert got[("ingest_delivery_seconds_sum", ())] == pytest.approx(100.61)


def test_queue_stats_become_gauges(redis_client: redis.Redis) -> None:
    """Queue depths per state and worker counts given at scrape time are gauges."""
    stats = [QueueStat("ingest", queued=4, started=1, scheduled=0, deferred=0, failed=2, workers=3)]
    got = samples(metrics.render(redis_client, PREFIX, stats).decode())
    assert got[("ingest_queue_depth", (("queue", "ingest"), ("state", "queued")))] == 4
    assert got[("ingest_queue_depth", (("queue", "ingest"), ("state", "failed")))] == 2
    assert got[("ingest_workers", (("queue", "ingest"),))] == 3


def test_unknown_metric_wrong_labels_and_wrong_kind_are_refused(redis_client: redis.Redis) -> None:
    """Typos fail loudly at the call site instead of creating a metric nobody scrapes."""
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.record(redis_client, PREFIX, "ingest_nope_total")
    with pytest.raises(ValueError, match="takes labels"):
        metrics.record(redis_client, PREFIX, "ingest_feeds_polled_total", {"result": "ok"})
    with pytest.raises(ValueError, match="histogram"):
        metrics.record(redis_client, PREFIX, "ingest_fetch_seconds")
    with pytest.raises(ValueError, match="counter"):
        metrics.observe(redis_client, PREFIX, "ingest_matches_total", 1.0)


def test_recording_with_redis_down_does_not_raise() -> None:
    """A lost count never fails the job that counted it."""
    from tests.conftest import free_port

    down = redis.Redis(port=free_port(), socket_connect_timeout=1)
    metrics.record(down, PREFIX, "ingest_matches_total")
    metrics.observe(down, PREFIX, "ingest_fetch_seconds", 0.2)


def test_reset_forgets_counts(redis_client: redis.Redis) -> None:
    """reset() deletes every metric hash under the prefix."""
    metrics.record(redis_client, PREFIX, "ingest_matches_total", value=7)
    metrics.reset(redis_client, PREFIX)
    assert samples(metrics.render(redis_client, PREFIX).decode())[("ingest_matches_total", ())] == 0


def test_buffer_sends_counts_once_a_second_in_one_round_trip(redis_client: redis.Redis) -> None:
    """Buffered counts reach Redis when FLUSH_EVERY has passed at the next add, or on flush()."""
    buffer = metrics.Buffer(redis_client, every=0.3)
    key = f"{PREFIX}metrics:ingest_alerts_delivered_total"
    metrics.record(buffer, PREFIX, "ingest_alerts_delivered_total")
    metrics.observe(buffer, PREFIX, "ingest_delivery_seconds", 0.2)
    metrics.record(buffer, PREFIX, "ingest_alerts_delivered_total")
    assert not redis_client.exists(key)  # held
    buffer.flush()
    assert float(redis_client.hget(key, "[]") or 0) == 2
    metrics.record(buffer, PREFIX, "ingest_alerts_delivered_total")
    assert float(redis_client.hget(key, "[]") or 0) == 2
    time.sleep(0.35)
    metrics.record(buffer, PREFIX, "ingest_alerts_delivered_total")  # due: both go out now
    assert float(redis_client.hget(key, "[]") or 0) == 4
    got = samples(metrics.render(redis_client, PREFIX).decode())
    assert got[("ingest_delivery_seconds_count", ())] == 1


def test_buffer_with_redis_down_does_not_raise() -> None:
    buffer = metrics.Buffer(redis.Redis(port=1, socket_connect_timeout=0.2), every=0)
    metrics.record(buffer, PREFIX, "ingest_alerts_delivered_total")  # flushes at once: fails quietly
    buffer.flush()


def test_counts_kept_across_a_failed_flush(redis_client: redis.Redis) -> None:
    """Counts a flush could not send (Redis restarting) go out with the next flush, once."""
    from tests.conftest import free_port

    buffer = metrics.Buffer(redis.Redis(port=free_port(), socket_connect_timeout=1), every=60)
    key = f"{PREFIX}metrics:ingest_articles_stored_total"
    metrics.record(buffer, PREFIX, "ingest_articles_stored_total", value=3)
    buffer.flush()  # Redis away: nothing raised, nothing lost
    buffer.client = redis_client  # Redis back
    buffer.flush()
    buffer.flush()
    assert float(redis_client.hget(key, "[]") or 0) == 3
