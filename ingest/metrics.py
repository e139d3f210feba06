"""Prometheus metrics kept in Redis, so the poller, every worker and the API add to one set.

The processes that count (poller, workers) are not the one that is scraped
(the API), and RQ forks a work horse per job, so in-process prometheus-client
counters would be lost. Each metric is one Redis hash `{prefix}metrics:{name}`
whose fields are label sets; `record` and `observe` add to it with
HINCRBYFLOAT (atomic, one round trip, or none extra when given a pipeline).
`render` reads the hashes and the live queue figures at scrape time and
writes the Prometheus text format with prometheus-client.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from ingest.log import get_logger

log = get_logger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)

FLUSH_EVERY = 1.0  # seconds a Buffer holds counts before sending them


class Buffer:
    """Counts added in this process, sent in one round trip at most every FLUSH_EVERY s.

    A worker delivering hundreds of alerts a second would otherwise spend a round trip per
    alert on counting. Whoever owns a buffer also flushes it when idle (the worker's heartbeat
    thread, the poller after each pass) and on exit; a killed process loses at most the last
    second of counts, never an article or an alert.
    """

    def __init__(self, client: redis.Redis, every: float = FLUSH_EVERY) -> None:
        self.client = client
        self.every = every
        self._pending: defaultdict[tuple[str, str], float] = defaultdict(float)
        self._sent_at = time.monotonic()
        self._lock = threading.Lock()

    def add(self, commands: Sequence[tuple[str, str, float]]) -> None:
        with self._lock:
            for key, field, amount in commands:
                self._pending[(key, field)] += amount
            due = time.monotonic() - self._sent_at >= self.every
        if due:
            self.flush()

    def flush(self) -> None:
        """Send what is pending now (one MULTI/EXEC: all or nothing); on a Redis error the counts
        stay pending for the next flush, so a Redis restart does not lose them (their number is
        bounded by the metrics' label sets, not by time)."""
        with self._lock:
            pending, self._pending = self._pending, defaultdict(float)
            self._sent_at = time.monotonic()
            if not pending:
                return
            try:
                with self.client.pipeline(transaction=True) as pipe:
                    for (key, field), amount in pending.items():
                        pipe.hincrbyfloat(key, field, amount)
                    pipe.execute()
            except redis.RedisError as exc:
                for item, amount in pending.items():
                    self._pending[item] += amount
                log.warning("metrics.flush_failed", error=str(exc), counts=len(pending))


RedisLike = redis.Redis | redis.client.Pipeline | Buffer


@dataclass(frozen=True)
class MetricDef:
    """One metric: counters end in `_total`; a histogram has buckets."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def is_histogram(self) -> bool:
        return bool(self.buckets)


METRICS: dict[str, MetricDef] = {
    m.name: m
    for m in (
        MetricDef(
            "ingest_feeds_polled_total",
            "Feed polls by outcome (ok, not_modified, error, gone).",
            ("outcome",),
        ),
        MetricDef("ingest_fetch_seconds", "Seconds one feed fetch took.", buckets=LATENCY_BUCKETS),
        MetricDef("ingest_entries_seen_total", "Feed entries read by the poller."),
        MetricDef("ingest_entries_new_total", "Feed entries never queued before (sent to workers)."),
        MetricDef("ingest_articles_stored_total", "Articles stored (new or syndicated copies)."),
        MetricDef(
            "ingest_duplicates_total",
            "Duplicates found, by kind (exact: dropped, near: joined a story).",
            ("kind",),
        ),
        MetricDef("ingest_articles_language_total", "Stored articles by detected language.", ("language",)),
        MetricDef("ingest_matches_total", "Matches that became an alert (one per subscription and story)."),
        MetricDef("ingest_alerts_delivered_total", "Webhook alerts delivered (2xx)."),
        MetricDef(
            "ingest_alerts_failed_total", "Webhook alerts dead-lettered (retries used up, or disabled)."
        ),
        MetricDef("ingest_alerts_retried_total", "Webhook attempts that failed and were scheduled again."),
        MetricDef(
            "ingest_alert_attempts_total",
            "Webhook attempts by outcome (delivered, retry, failed).",
            ("outcome",),
        ),
        MetricDef(
            "ingest_delivery_seconds",
            "Seconds one successful webhook delivery took.",
            buckets=LATENCY_BUCKETS,
        ),
    )
}


@dataclass(frozen=True)
class QueueStat:
    """One RQ queue at scrape time."""

    queue: str
    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    workers: int


def _key(prefix: str, name: str) -> str:
    return f"{prefix}metrics:{name}"


def _label_values(metric: MetricDef, labels: Mapping[str, str] | None) -> list[str]:
    given = dict(labels or {})
    if set(given) != set(metric.labels):
        raise ValueError(f"{metric.name} takes labels {list(metric.labels)}, got {sorted(given)}")
    return [str(given[name]) for name in metric.labels]


def _metric(name: str) -> MetricDef:
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def _send(conn: RedisLike, commands: Sequence[tuple[str, str, float]]) -> None:
    """HINCRBYFLOAT each (key, field, amount): buffered, queued on a pipeline, or sent in one round trip."""
    if isinstance(conn, Buffer):
        conn.add(commands)
        return
    if isinstance(conn, redis.client.Pipeline):
        for key, field, amount in commands:
            conn.hincrbyfloat(key, field, amount)
        return
    try:
        with conn.pipeline(transaction=False) as pipe:
            for key, field, amount in commands:
                pipe.hincrbyfloat(key, field, amount)
            pipe.execute()
    except redis.RedisError as exc:  # a lost count must never fail a job
        log.warning("metrics.record_failed", error=str(exc))


def record(
    conn: RedisLike, prefix: str, name: str, labels: Mapping[str, str] | None = None, value: float = 1
) -> None:
    """Add `value` to counter `name` (e.g. `ingest_feeds_polled_total`, {"outcome": "ok"})."""
    key, field = _counter_field(prefix, name, _frozen(labels))
    _send(conn, [(key, field, value)])


def observe(
    conn: RedisLike, prefix: str, name: str, value: float, labels: Mapping[str, str] | None = None
) -> None:
    """Add one observation (seconds) to histogram `name`: its bucket, the sum and the count."""
    key, buckets, total, count = _histogram_fields(prefix, name, _frozen(labels))
    field = next((f for bound, f in buckets if value <= bound), buckets[-1][1])
    _send(conn, [(key, field, 1), (key, total, value), (key, count, 1)])


def _frozen(labels: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items())) if labels else ()


@functools.lru_cache(maxsize=1024)
def _counter_field(prefix: str, name: str, labels: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The hash key and field of one counter's label set, computed once (a sender counts per alert)."""
    metric = _metric(name)
    if metric.is_histogram:
        raise ValueError(f"{name} is a histogram: use observe()")
    return _key(prefix, name), json.dumps(_label_values(metric, dict(labels)))


@functools.lru_cache(maxsize=1024)
def _histogram_fields(
    prefix: str, name: str, labels: tuple[tuple[str, str], ...]
) -> tuple[str, tuple[tuple[float, str], ...], str, str]:
    """Key, (bound, field) per bucket (+Inf last), sum and count fields of one histogram's label set."""
    metric = _metric(name)
    if not metric.is_histogram:
        raise ValueError(f"{name} is a counter: use record()")
    values = _label_values(metric, dict(labels))
    bounds = (*metric.buckets, float("inf"))
    buckets = tuple((b, json.dumps([*values, "le", repr(b)])) for b in bounds)
    return _key(prefix, name), buckets, json.dumps([*values, "sum"]), json.dumps([*values, "count"])


class RedisMetrics:
    """The `Metrics` port over a process's Buffer: services count without knowing about Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.buffer = Buffer(client)
        self.prefix = prefix

    def count(self, name: str, labels: Mapping[str, str] | None = None, value: float = 1) -> None:
        record(self.buffer, self.prefix, name, labels, value)

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        observe(self.buffer, self.prefix, name, value, labels)

    def flush(self) -> None:
        self.buffer.flush()


def _counter(metric: MetricDef, fields: Mapping[bytes, bytes]) -> Metric:
    family = CounterMetricFamily(metric.name.removesuffix("_total"), metric.help, labels=metric.labels)
    if not metric.labels and not fields:
        family.add_metric([], 0.0)
    for field, amount in fields.items():
        family.add_metric(json.loads(field), float(amount))
    return family


def _histogram(metric: MetricDef, fields: Mapping[bytes, bytes]) -> Metric:
    series: dict[tuple[str, ...], dict[str, float]] = {}
    for raw, amount in fields.items():
        parts = json.loads(raw)
        n = len(metric.labels)
        labels, kind = tuple(parts[:n]), parts[n]
        slot = series.setdefault(labels, {})
        name = f"le={parts[n + 1]}" if kind == "le" else kind
        slot[name] = slot.get(name, 0.0) + float(amount)
    if not metric.labels and not series:
        series[()] = {}
    family = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
    for labels, slot in series.items():
        running, buckets = 0.0, []
        for bound in (*metric.buckets, float("inf")):
            running += slot.get(f"le={bound!r}", 0.0)
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        family.add_metric(list(labels), buckets, slot.get("sum", 0.0))
    return family


def _queue_families(stats: Iterable[QueueStat]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "ingest_queue_depth", "Jobs per RQ queue and state at scrape time.", labels=("queue", "state")
    )
    workers = GaugeMetricFamily(
        "ingest_workers", "Live RQ workers listening on each queue.", labels=("queue",)
    )
    for s in stats:
        for state in ("queued", "started", "scheduled", "deferred", "failed"):
            depth.add_metric([s.queue, state], getattr(s, state))
        workers.add_metric([s.queue], s.workers)
    yield depth
    yield workers


class _Collector:
    """A one-shot prometheus-client collector over what `render` read."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


@dataclass(frozen=True)
class OutboxGauges:
    """The outbox at scrape time (`OutboxStore.delivery_stats`)."""

    due: int
    in_flight: int
    oldest_due_seconds: float
    held: int
    failed: int
    circuits_open: int


def _outbox_families(gauges: OutboxGauges | None) -> Iterator[Metric]:
    if gauges is None:
        return
    for name, value, text in (
        ("ingest_alerts_due", gauges.due, "Alerts due now and not in flight."),
        ("ingest_alerts_in_flight", gauges.in_flight, "Alerts a sender holds (attempt running or queued)."),
        ("ingest_alerts_oldest_due_seconds", gauges.oldest_due_seconds,
         "Seconds the longest-waiting due alert has been due."),
        ("ingest_alerts_held", gauges.held, "Alerts held for a digest."),
        ("ingest_alerts_dead_letters", gauges.failed, "Dead-lettered alerts (status failed)."),
        ("ingest_receivers_circuit_open", gauges.circuits_open, "Receiver origins whose circuit is open."),
    ):  # fmt: skip
        family = GaugeMetricFamily(name, text)
        family.add_metric([], float(value))
        yield family


def read_families(conn: redis.Redis, prefix: str, stats: Iterable[QueueStat] = (),
                  outbox: OutboxGauges | None = None) -> list[Metric]:  # fmt: skip
    """Every metric as a prometheus-client family: the Redis hashes in one round trip, then queues."""
    with conn.pipeline(transaction=False) as pipe:
        for name in METRICS:
            pipe.hgetall(_key(prefix, name))
        hashes = pipe.execute()
    families = [
        (_histogram if m.is_histogram else _counter)(m, h)
        for m, h in zip(METRICS.values(), hashes, strict=True)
    ]
    return [*families, *_queue_families(stats), *_outbox_families(outbox)]


def render(conn: redis.Redis, prefix: str, stats: Iterable[QueueStat] = (),
           outbox: OutboxGauges | None = None) -> bytes:  # fmt: skip
    """The Prometheus text exposition of every metric plus the queue and outbox gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(read_families(conn, prefix, stats, outbox)))
    return generate_latest(registry)


def reset(conn: redis.Redis, prefix: str) -> None:
    """Forget every recorded count (tests; a deliberate reset of the dashboards)."""
    conn.delete(*(_key(prefix, name) for name in METRICS))
