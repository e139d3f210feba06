"""The polling benchmark's processes and data: a throwaway database, its bulk load, the children.

The database is one PostgreSQL database created for the run (dropped afterwards) on the given
server, or, when that does not answer, on a throwaway cluster as the tests start one. The feeds
go in with one COPY (state as after an earlier poll: ETag of version 0, due now), and the seen
entries of the feeds that will change (their version-0 items, keys and hashes as the poller's
intake computes them) with another, so a changed feed has exactly one new entry.

Children (started by `polling.py --child ...`): a poller runs the poller loop of `app.poller`
after a start signal in Redis (start-up CPU stays out of the figures) and, once stopped,
prints JSON with its CPU seconds and peak RSS; `reader` runs lemon24/reader on the same farm.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.e2e.common import vmhwm
from benchmarks.poll_farm import document, etag, feed_url
from testkit.postgres import admin_or_throwaway, fresh_database

READY_KEY, GO_KEY, IDLE_KEY = "bench:poll:ready", "bench:poll:go", "bench:poll:idle"


def changed(f: int, hosts: int) -> bool:
    """5 % of the feeds, spread over all hosts (50 of each 1,000 consecutive feeds on 1,000 hosts)."""
    return (f % hosts + f // hosts) % 20 == 0


@contextmanager
def database(pg_admin: str, tag: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one run; its URL."""
    admin, stop = admin_or_throwaway(pg_admin)
    try:
        with fresh_database(admin, f"bench_poll_{os.getpid()}_{tag}") as url:
            yield url
    finally:
        if stop:
            stop()


def load(db_url: str, feeds: int, hosts: int, port: int) -> float:
    """Schema, `feeds` feeds due now and the changed feeds' seen entries; returns the seconds taken."""
    import psycopg

    from ingest.models import FetchResult
    from ingest.parse import entry_hash, parse_feed
    from ingest.store import open_store

    started = time.monotonic()
    open_store(db_url).close()  # the schema, by the store's own migrations
    now = datetime.now(UTC)
    polled, due = now - timedelta(minutes=20), now - timedelta(minutes=1)
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY feeds (url, created_at, etag, last_polled_at, last_success_at, next_poll_at, last_status) "
            "FROM STDIN"
        ) as copy:
            for f in range(feeds):
                copy.write_row((feed_url(f, hosts, port), polled, etag(f, 0), polled, polled, due, 200))
        cur.execute("SELECT id, url FROM feeds")
        ids = {url: fid for fid, url in cur.fetchall()}
        with cur.copy("COPY seen_entries (feed_id, entry_key, seen_at, content_hash) FROM STDIN") as copy:
            for f in range(feeds):
                if not changed(f, hosts):
                    continue
                url = feed_url(f, hosts, port)
                result = FetchResult(url=url, status=200, content=document(f, 0), headers={})
                for entry in parse_feed(result, feed_id=ids[url], feed_url=url).entries:
                    copy.write_row((ids[url], entry.entry_key, polled, entry_hash(entry)))
        conn.commit()
    return time.monotonic() - started


def queued_entries(db_url: str) -> int:
    """Entries in the batches written to the database (what the poller queued)."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(json_array_length(payload::json)), 0) FROM pending_batches"
        ).fetchone()
        return int(row[0]) if row else 0


def poller_child() -> None:
    """The poller loop from the start signal until SIGTERM; JSON figures on stdout."""
    import app.poller as poller
    from app.runtime import Runtime
    from ingest.log import configure_logging
    from ingest.settings import Settings

    settings = Settings.from_env()
    configure_logging(settings)
    rt = Runtime(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rt.store.list_feeds_page(limit=1)  # connections open before the clock starts
    original, polled, last_work = poller.poll_once, [0], [0.0]
    key = f"{IDLE_KEY}:{os.getpid()}"

    def counted(rt_: Any, **kwargs: Any) -> Any:
        summary = original(rt_, **kwargs)
        polled[0] += summary.feeds
        if summary.feeds:
            last_work[0] = time.time()
        rt.redis.set(f"{key}:{'work' if summary.feeds else 'idle'}", time.time())
        return summary

    poller.poll_once = counted  # type: ignore[assignment]
    rt.redis.sadd(READY_KEY, os.getpid())
    while not rt.redis.exists(GO_KEY) and not stop.is_set():
        time.sleep(0.01)
    before = os.times()
    poller.run_poller(rt, stop, tick=0.05)
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    figures = {
        "pid": os.getpid(),
        "cpu": cpu,
        "rss_mib": vmhwm(os.getpid()),
        "feeds": polled[0],
        "last_work": last_work[0],
    }
    print(json.dumps(figures), flush=True)
    rt.close()


def reader_child(db: str, urls_file: str) -> None:
    """lemon24/reader on the farm: the feeds added and fetched once (untimed), then one timed
    `update_feeds(workers=N)` for each N read from stdin; a JSON line per run on stdout."""
    import logging

    from reader import make_reader

    logging.disable(logging.WARNING)
    lib = make_reader(db)
    for url in Path(urls_file).read_text().split():
        lib.add_feed(url)
    lib.update_feeds(workers=8, scheduled=False)
    print(json.dumps({"ready": True, "entries": lib.get_entry_counts().total}), flush=True)
    for line in sys.stdin:
        workers = int(line)
        before_entries = lib.get_entry_counts().total or 0
        started, cpu = time.perf_counter(), time.process_time()
        lib.update_feeds(workers=workers, scheduled=False)  # every feed, due or not
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        new = (lib.get_entry_counts().total or 0) - before_entries
        print(json.dumps({"workers": workers, "seconds": seconds, "cpu": cpu, "new": new,
                          "rss_mib": vmhwm(os.getpid())}), flush=True)  # fmt: skip
    lib.close()
