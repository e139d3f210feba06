"""The sender's outbox queries with a deep backlog: milliseconds per claim, finish and stats call.

    .venv/bin/python benchmarks/outbox_claim.py [--pending 10000] [--subs 100] [--backends sqlite,postgresql]
        [--pg-admin postgresql://postgres@127.0.0.1:5432/test] [--rounds 200]

One subscription has `--pending` due alerts, the other `--subs - 1` one each; a second scenario
adds `--pending` retries not due yet to the deep subscription (the claim must walk past them).
Each round claims 50 subscriptions x 10 alerts, then finishes every claimed alert as a
failed attempt due again at once (so the backlog never drains), then reads `delivery_stats`.
Prints the median wall time and this process's CPU (all of SQLite's work; not PostgreSQL's server)
per call and per claimed alert, and the query plans' index use
(PostgreSQL after ANALYZE, as autovacuum keeps it; SQLite without statistics, as the service runs it).
SQLite in a temporary directory; PostgreSQL: a database created on `--pg-admin`, dropped after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.models import Alert, Subscription, utcnow
from ingest.store.outbox import AttemptOutcome
from ingest.store.postgres import PostgresStore
from ingest.store.sql.claims import ELIGIBLE, POSTGRES_CLAIM, fairest_first
from ingest.store.sql.outbox import DUE
from ingest.store.sqlite import SQLiteStore

Store = SQLiteStore | PostgresStore


@contextmanager
def open_backend(backend: str, pg_admin: str) -> Iterator[Store]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            store = SQLiteStore(Path(tmp) / "bench.db")
            yield store
            store.close()
        return
    import psycopg

    name = "ingest_bench_outbox"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    store = PostgresStore(pg_admin.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield store
    finally:
        store.close()
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def fill(store: Store, subs: int, pending: int) -> None:
    start = utcnow() - timedelta(hours=1)
    for n in range(subs):
        store.add_subscription(
            Subscription(
                id=f"sub{n:04d}", name=f"s{n}", query="x", webhook=f"https://r{n}.example/h", secret="s"
            )
        )
    deep = [_alert(f"deep{i:06d}", "sub0000", start + timedelta(milliseconds=i)) for i in range(pending)]
    store.add_alerts(deep)
    store.add_alerts([_alert(f"one{n:04d}", f"sub{n:04d}", start) for n in range(1, subs)])


def analyze(store: Store) -> None:
    """PostgreSQL plans from table statistics, as autovacuum keeps them; SQLite runs without any."""
    if isinstance(store, PostgresStore):
        with store._statement() as cur:
            cur.execute("ANALYZE")


def add_deferred(store: Store, pending: int) -> None:
    """Retries of the deep subscription that are not due for an hour, older than everything due."""
    early = utcnow() - timedelta(days=1)
    later = utcnow() + timedelta(hours=1)
    store.add_alerts(
        [_alert(f"later{i:06d}", "sub0000", early + timedelta(milliseconds=i), later) for i in range(pending)]
    )


def _alert(alert_id: str, sub_id: str, created: Any, due: Any = None) -> Alert:
    return Alert(
        id=alert_id,
        subscription_id=sub_id,
        story_id=alert_id,
        article_id="a",
        matched_terms=["x"],
        created_at=created,
        next_attempt_at=due,
    )


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall ms, this process's CPU ms, result)."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000, result


def rounds(store: Store, count: int) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {
        "claim": [],
        "claim/alert": [],
        "finish/alert": [],
        "stats": [],
    }
    for _ in range(count):
        now = utcnow()
        wall, cpu, claims = timed(
            lambda now=now: store.claim_alerts(
                "bench",
                now=now,
                lease_until=now + timedelta(seconds=30),
                subscriptions=50,
                per_subscription=10,
            )
        )
        n = max(1, len(claims))
        times["claim"].append((wall, cpu))
        times["claim/alert"].append((wall / n, cpu / n))
        outcomes = [AttemptOutcome(c.alert.id, "pending", 0, now, "bench", False) for c in claims]
        wall, cpu, _ = timed(
            lambda now=now, outcomes=outcomes: store.finish_attempts("bench", outcomes, now=now)
        )
        times["finish/alert"].append((wall / n, cpu / n))
        wall, cpu, _ = timed(lambda: store.delivery_stats(utcnow()))
        times["stats"].append((wall, cpu))
    return times


def plans(store: Store) -> list[str]:
    """Which indexes the claim's queries use."""
    now = store._ts(utcnow())
    with store._read() as cur:
        if isinstance(store, SQLiteStore):
            queries = [
                (
                    f"SELECT s.id FROM subscriptions s WHERE {ELIGIBLE} "
                    f"ORDER BY {fairest_first('s')} LIMIT 50",
                    (now,) * 3,
                ),
                (
                    "SELECT id FROM alerts WHERE subscription_id = 'sub0000' AND status = 'pending' AND "
                    f"{DUE} ORDER BY created_at, id LIMIT 10",
                    (now, now),
                ),
            ]
            out = []
            for sql, params in queries:
                cur.execute("EXPLAIN QUERY PLAN " + sql, params)
                out += [row[-1] for row in cur.fetchall()]
            return out
        cur.execute("EXPLAIN " + POSTGRES_CLAIM, (now, now, now, 50, now, now, 10, "x", now, now))
        return [row[0].strip() for row in cur.fetchall() if "Index" in row[0] or "Seq Scan" in row[0]]


def report(label: str, times: dict[str, list[tuple[float, float]]]) -> None:
    cells = []
    for key, values in times.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        cells.append(f"{key} {wall:.3f}/{cpu:.3f}")
    print(f"{label:38} " + "  ".join(cells) + "  (ms, median wall/this process's CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--subs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with open_backend(backend, args.pg_admin) as store:
            fill(store, args.subs, args.pending)
            analyze(store)
            report(f"{backend}: {args.pending} due + {args.subs - 1}x1", rounds(store, args.rounds))
            add_deferred(store, args.pending)
            analyze(store)
            report(f"{backend}: + {args.pending} deferred retries", rounds(store, args.rounds))
            for line in plans(store):
                print(f"    plan: {line}")


if __name__ == "__main__":
    main()
