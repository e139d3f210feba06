"""Alert delivery with misbehaving receivers: isolation, latency, throughput, CPU per alert, duplicates.

    .venv/bin/python benchmarks/delivery.py [--corpus DIR] [--feeds 100] [--items 25]
        [--receivers 100] [--per-article 2] [--workers 2] [--backend sqlite|postgresql]
        [--rate 20] [--steady 20] [--repeat 1] [--webhook-timeout S] [--modes bad,healthy]

All on loopback, real processes: the feed farm (`farm.py`), a process serving `--receivers`
webhook receivers (`e2e/receivers.py`, one port, so one origin, each), a fresh valkey-server,
SQLite (or PostgreSQL, a database created and dropped), and the service's own loops: the
poller, `--workers` RQ workers and one sender (`ingest poll` / `worker` / `send`, run by
`e2e/children.py`). Subscription n posts to receiver n and matches the articles of
`--per-article` feeds (`feed:` queries), so every article alerts that many subscriptions.

Two runs, each on a fresh database and Redis: "with 4 bad" (receiver 0 dribbles its answer one
byte a second, 1 never answers, 2 answers 500, 3 resets the connection; the other 96 healthy)
and "all healthy". Each run: a bulk phase (all feeds x items new at once; articles/s from the
farm's first request to the last article stored or healthy alert received), then a steady phase
(`--rate` new items/s for `--steady` s: healthy receivers' alert latency from the poll that
first carried the item). Printed (table on stdout, progress on stderr):

* healthy receivers' latency p50/p99, with the bad receivers present and with all healthy;
* articles/s in both runs and their ratio;
* delivery CPU per alert delivered, bulk phase: the sender process's CPU (claims, bodies,
  signatures, HTTP, outcomes) plus the workers' outbox writes and sender bell (thread CPU);
* the receivers' record: requests per role and their longest duration, duplicate concurrent
  attempts (a request of a webhook-id starting before an earlier one of it ended), webhook-ids
  a healthy receiver got twice, bad signatures; circuits left open; how long the sender took to
  stop on SIGTERM with attempts to the hanging receivers in flight.

BENCH_CPROFILE_DIR=DIR writes a cProfile dump of each child (the sender's is `sender-PID.pstats`).
The end-to-end ratio to `reader` is `benchmarks/pipeline.py`'s figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.e2e.common import mem_total
from benchmarks.e2e.delivery_run import DeliveryBench, outcomes


def report(runs: list[dict[str, Any]], bench: DeliveryBench) -> None:
    args = bench.args
    print(
        f"\nmachine: {os.cpu_count()} cores, {mem_total()} GiB, load average at start "
        f"{', '.join(f'{x:.2f}' for x in bench.load_start)}; shared with other work"
    )
    print(
        f"farm: {args.feeds} feeds x {args.items} items; {args.receivers} subscriptions on "
        f"{args.receivers} receivers, {args.per_article} alerts per article; {args.workers} workers, "
        f"1 sender; {args.backend}; webhook timeout {args.webhook_timeout or 'default'}\n"
    )
    head = (
        "| run | articles | articles/s | alerts delivered | delivery CPU ms per alert (sender + queueing) "
        f"| steady ({args.rate:g}/s) healthy latency p50 / p99 s | duplicate concurrent attempts "
        "| sender stop s | load |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in runs:
        print(
            f"| {r['label']} | {r['stored']} | {r['rate']:.0f} | {r['delivered']} "
            f"| {r['cpu_per_alert_ms']:.3f} ({r['sender_cpu'] * 1000 / max(r['delivered'], 1):.3f} + "
            f"{r['queueing_cpu'] * 1000 / max(r['delivered'], 1):.3f}) "
            f"| {r['steady_p50']:.3f} / {r['steady_p99']:.3f} (n={r['steady_n']}) | {r['overlaps']} "
            f"| {r['stop_seconds']:.1f} | {r['load_start']:.2f} -> {r['load_end']:.2f} |"
        )
    bad = [r for r in runs if r["hostile"]]
    good = [r for r in runs if not r["hostile"]]
    if bad and good:
        ratio = max(r["rate"] for r in bad) / max(r["rate"] for r in good)
        pairs = [b["rate"] / g["rate"] for b, g in zip(bad, good, strict=False)]
        print(
            f"\narticles/s with the 4 bad receivers / all healthy: best of each {ratio:.2f}, run by run "
            f"{', '.join(f'{p:.2f}' for p in pairs)}, median {statistics.median(pairs):.2f} (goal >= 0.95)"
        )
    for r in runs:
        roles = ", ".join(
            f"{k} {n} (longest {s:.1f} s)" for k, (n, s) in sorted(outcomes(r["requests"]).items())
        )
        healthy_ids = [q[1] for q in r["requests"] if q[4] == "healthy"]
        twice = len(healthy_ids) - len(set(healthy_ids))
        opened = sorted(o for o, state in r["circuits"].items() if state != "closed")
        print(
            f"{r['label']}: requests by receiver role: {roles}; webhook-ids a healthy receiver got "
            f"twice: {twice}; bad signatures: {r['bad_signatures']}; circuits not closed at the end: "
            f"{len(opened)}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=25, help="items per feed, all new in the bulk phase")
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--receivers", type=int, default=100, help="receivers = subscriptions (>= 4)")
    parser.add_argument("--per-article", type=int, default=2, help="subscriptions each article alerts")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--modes", default="bad,healthy", help="run order (reversed every other repeat)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rate", type=float, default=20.0, help="new items per second in the steady phase")
    parser.add_argument("--steady", type=float, default=20.0, help="seconds of the steady phase (0: none)")
    parser.add_argument("--interval", type=int, default=5, help="every feed's fixed poll interval, seconds")
    parser.add_argument(
        "--webhook-timeout", type=float, default=0.0, help="INGEST_WEBHOOK_TIMEOUT (default: the service's)"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="longest wait for a phase to settle")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.receivers < 4:
        parser.error("--receivers must be at least 4 (four of them misbehave)")
    from ingest.log import configure_logging
    from ingest.settings import Settings

    configure_logging(Settings.from_env({"INGEST_LOG_LEVEL": "warning"}))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bench = DeliveryBench(args)
    runs: list[dict[str, Any]] = []
    try:
        for rep in range(args.repeat):
            for mode in modes if rep % 2 == 0 else modes[::-1]:  # ABBA: drift of the host's load cancels
                runs.append(bench.run(mode == "bad", f"{mode}_{rep}"))
    except KeyboardInterrupt:
        print("interrupted; partial results", file=sys.stderr)
    finally:
        report(runs, bench)
        bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
