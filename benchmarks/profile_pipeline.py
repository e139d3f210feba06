"""A pyinstrument profile of the worker's hot path: Pipeline.process over farm entries, in-process.

    .venv/bin/python benchmarks/profile_pipeline.py [--corpus DIR] [--feeds 120] [--items 25]
                                                    [--subs 1000] [--out profile.txt] [--no-profile]

Builds the farm's RSS documents (see `farm.py`), parses them with the real parser into RawEntry,
and runs them through a real Pipeline (a fresh valkey-server on a free port, SQLite in a temporary
directory, `--subs` subscriptions loaded) in batches of INGEST_BATCH_SIZE, as a worker would:
first every entry new, then the same entries again (all unchanged: the re-poll path). Prints
entries/s and wall seconds per stage (BatchResult.seconds); writes pyinstrument's text profile
to `--out` (default: stdout). Needs `pip install pyinstrument` (a benchmark-only dependency).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.e2e.common import SECRET, start_valkey
from benchmarks.e2e.queries import make_queries
from benchmarks.farm import Farm, load_corpus
from ingest.models import FetchResult, RawEntry, Subscription, utcnow
from ingest.parse import parse_feed


def farm_entries(farm: Farm) -> list[RawEntry]:
    """Every item of the farm as the poller hands it to a worker (rendered, parsed, dict round trip)."""
    entries: list[RawEntry] = []
    for f in range(farm.feeds):
        url = farm.feed_url(f)
        doc = farm.document(f, farm.items)
        parsed = parse_feed(
            FetchResult(url=url, status=200, content=doc, headers={"content-type": "application/rss+xml"}),
            feed_id=f + 1,
            feed_url=url,
        )
        entries.extend(RawEntry.from_dict(e.to_dict()) for e in parsed.entries)
    return entries


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--feeds", type=int, default=120)
    parser.add_argument("--items", type=int, default=25)
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="text profile file (default stdout)")
    parser.add_argument("--no-profile", action="store_true", help="time only, without pyinstrument")
    args = parser.parse_args()

    from app.runtime import Runtime
    from ingest.log import configure_logging
    from ingest.settings import Settings

    workdir = Path(tempfile.mkdtemp(prefix="ingest-profile-"))
    valkey, redis_url = start_valkey(workdir / "redis")
    settings = Settings.from_env(
        {
            "INGEST_DATA_DIR": str(workdir),
            "REDIS_URL": redis_url,
            "INGEST_LOG_LEVEL": "error",
            "INGEST_LOG_FORMAT": "json",
        }
    )
    configure_logging(settings)
    docs = load_corpus(args.corpus)
    farm = Farm(docs, feeds=args.feeds, items=args.items, port=8000)
    entries = farm_entries(farm)
    ctx = Runtime(settings)
    try:
        for n, query in enumerate(make_queries(docs, args.subs)):
            ctx.store.add_subscription(
                Subscription(
                    id=f"sub_{n:05d}",
                    name=f"q{n}",
                    query=query,
                    webhook="http://127.0.0.1:9/hook",
                    secret=SECRET,
                    created_at=utcnow(),
                )
            )
        pipeline = ctx.pipeline
        pipeline.subscriptions.current()
        gc.collect()
        size = settings.batch_size
        batches = [entries[i : i + size] for i in range(0, len(entries), size)]
        print(
            f"{len(entries)} entries from {args.feeds} feeds ({len(docs)} corpus articles), "
            f"{args.subs} subscriptions, batches of {size}",
            file=sys.stderr,
        )
        profiler = None
        if not args.no_profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.001)
            profiler.start()
        for label in ("new", "unchanged"):
            seconds: dict[str, float] = {}
            counts = {"stored": 0, "alerts": 0, "near": 0, "exact": 0, "unchanged": 0}
            started, cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                result = pipeline.process(batch)
                for stage, value in result.seconds.items():
                    seconds[stage] = seconds.get(stage, 0.0) + value
                counts["stored"] += len(result.stored)
                counts["alerts"] += len(result.alerts)
                counts["near"] += result.near_duplicates
                counts["exact"] += result.exact_duplicates
                counts["unchanged"] += result.unchanged
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
            stages = "  ".join(f"{k} {v * 1000 / len(entries):.2f}" for k, v in seconds.items())
            print(
                f"{label:9s} {len(entries) / wall:7.0f} entries/s  (cpu {cpu * 1000 / len(entries):.2f} "
                f"ms/entry)  {counts}\n          ms/entry per stage: {stages}"
            )
        if profiler is not None:
            profiler.stop()
            text = profiler.output_text(unicode=False, color=False, show_all=False)
            if args.out:
                args.out.write_text(text)
                print(f"profile written to {args.out}", file=sys.stderr)
            else:
                print(text)
    finally:
        ctx.close()
        valkey.terminate()
        valkey.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
