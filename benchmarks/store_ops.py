"""The store calls on the ingest hot path: microseconds per entry, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/store_ops.py [--batches 200] [--batch 50] [--backends sqlite,postgresql]
        [--pg-admin postgresql://postgres@127.0.0.1:5432/test]

What the poller and a worker ask of the store for each batch of `--batch` entries, in their order:
`seen_entry_hashes` + `add_batches` (intake), `get_batch`, `get_feed`, `get_articles_by_entries`,
`add_articles`, `add_alerts` (two alerts per article), `subscriptions_version`, `finish_batch`.
Prints the median over the batches of each call, per entry: wall time and this process's CPU
(all of SQLite's work; PostgreSQL's server CPU is not in it). Uses only methods whose signatures
have not changed, so the same script measures an older checkout as well (run it from there).
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.models import Alert, Article, Subscription
from ingest.store import open_store

T0 = datetime(2024, 5, 1, tzinfo=UTC)


@contextmanager
def database(backend: str, pg_admin: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/ops.db"
        return
    import psycopg

    name = "ingest_bench_store_ops"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield pg_admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(pg_admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def article(feed_id: int, n: int) -> Article:
    return Article(
        id=f"art_{feed_id}_{n}",
        feed_id=feed_id,
        feed_url=f"https://f{feed_id}.example/rss",
        entry_key=f"k{n}",
        url=f"https://news.example/{feed_id}/{n}",
        title=f"Title {n}",
        text=f"Body of article {n}, long enough to be a paragraph of news text. " * 8,
        summary=None,
        language="en",
        language_confidence=0.9,
        published_at=T0,
        story_id=f"st_{feed_id}_{n}",
        content_hash=f"h{n}",
        fetched_at=T0 + timedelta(seconds=n),
    )


def run(url: str, batches: int, size: int) -> dict[str, list[float]]:
    store = open_store(url)
    times: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.setdefault(name, []).append((time.perf_counter() - t0) * 1e6 / size)
        times.setdefault(f"{name} cpu", []).append((time.process_time() - c0) * 1e6 / size)
        return result

    feed = store.add_feed("https://f1.example/rss")
    for s in range(2):
        store.add_subscription(
            Subscription(id=f"sub{s}", name="s", query="x", webhook=f"https://h{s}.example/", secret="s")
        )
    for b in range(batches):
        keys = [f"k{b * size + i}" for i in range(size)]
        entries = [{"entry_key": k} for k in keys]
        timed("seen_entry_hashes", lambda keys=keys: store.seen_entry_hashes(feed.id, keys))
        (batch,) = timed(
            "add_batches", lambda e=entries, k=keys: store.add_batches(feed.id, [e], {x: "h" for x in k})
        )
        timed("get_batch", lambda batch=batch: store.get_batch(batch.id))
        timed("get_feed", lambda: store.get_feed(feed.id))
        arts = [article(feed.id, b * size + i) for i in range(size)]
        pairs = [(a.feed_id, a.entry_key) for a in arts]
        timed("get_articles_by_entries", lambda pairs=pairs: store.get_articles_by_entries(pairs))
        timed("add_articles", lambda arts=arts: store.add_articles(arts))
        alerts = [
            Alert(
                id=f"msg_{s}_{a.id}",
                subscription_id=f"sub{s}",
                story_id=a.story_id,
                article_id=a.id,
                matched_terms=["x"],
            )
            for a in arts
            for s in range(2)
        ]
        timed("add_alerts", lambda alerts=alerts: store.add_alerts(alerts))
        timed("subscriptions_version", store.subscriptions_version)
        timed("finish_batch", lambda batch=batch: store.finish_batch(batch.id))
    store.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with database(backend, args.pg_admin) as url:
            times = run(url, args.batches, args.batch)
        calls = [k for k in times if not k.endswith(" cpu")]
        cells = "  ".join(f"{k} {median(times, k):.1f}/{median(times, k + ' cpu'):.1f}" for k in calls)
        total = sum(median(times, k) for k in calls), sum(median(times, k + " cpu") for k in calls)
        print(f"{backend}: {cells}  total {total[0]:.1f}/{total[1]:.1f}")
    print(f"(us per entry, wall/this process's CPU, median over {args.batches} batches)")


def median(times: dict[str, list[float]], key: str) -> float:
    return statistics.median(times[key])


if __name__ == "__main__":
    main()
