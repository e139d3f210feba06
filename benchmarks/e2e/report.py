"""`pipeline.py`'s printed results: the run table, CPU per stage, Redis memory and server time."""

from __future__ import annotations

import os
from typing import Any

from benchmarks.e2e.bench import Bench
from benchmarks.e2e.common import mem_total


def stage_ms(run: dict[str, Any]) -> dict[str, float]:
    """CPU ms per stored article per stage (bulk phase)."""
    s, n = run["stages"], max(run["stored"], 1)

    def get(role: str, name: str) -> float:
        return float(s.get(f"{role}:{name}:cpu", 0.0))

    poller_cpu = run["cpu"]["poller"]
    parse, queue, record = get("poller", "parse"), get("poller", "queue"), get("poller", "record")
    worker_cpu = sum(v for k, v in run["cpu"].items() if k.startswith("worker"))
    sender_cpu = sum(v for k, v in run["cpu"].items() if k.startswith("sender"))
    job = get("worker", "job_process")
    in_job = ("clean_language", "dedup", "store", "known", "match", "outbox", "wake")
    stages = {
        "fetch*": poller_cpu - parse - queue - record,
        "parse": parse,
        "queue": queue + record,
        "clean": get("worker", "clean_language") - get("worker", "language"),
        "language": get("worker", "language"),
        "dedup": get("worker", "dedup"),
        "store": get("worker", "store") + get("worker", "known"),
        "match": get("worker", "match"),
        "alert": get("worker", "outbox") + get("worker", "wake") + sender_cpu,
        "job other": job - sum(get("worker", k) for k in in_job),
        "rq": worker_cpu - job,
        "valkey": run["cpu"]["valkey"],
    }
    return {k: v * 1000 / n for k, v in stages.items()}


def best(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fastest run of each (backend, workers)."""
    top: dict[tuple[str, int], dict[str, Any]] = {}
    for r in runs:
        key = (r["backend"], r["workers"])
        if key not in top or r["rate"] > top[key]["rate"]:
            top[key] = r
    return list(top.values())


def report(runs: list[dict[str, Any]], readers: list[dict[str, Any]], bench: Bench) -> None:
    args, best_reader = bench.args, bench.reader_best or {"rate": float("nan")}
    print(
        f"\nmachine: {os.cpu_count()} cores, {mem_total()} GiB, load average at start "
        f"{', '.join(f'{x:.2f}' for x in bench.load_start)}; shared with other work"
    )
    print(
        f"farm: {args.feeds} feeds x {args.items} items ({len(bench.docs)} corpus articles, "
        f"{args.syndicated:.0%} syndicated copies, {args.hosts} loopback hosts); "
        f"{args.subs} subscriptions; batch size {os.environ.get('INGEST_BATCH_SIZE', '50')}; "
        f"poll interval {args.interval} s"
    )
    print("\nreader (lemon24/reader) update_feeds(workers=4), same farm:")
    for r in readers:
        print(
            f"  {r['entries']} entries in {r['seconds']:.2f} s = {r['rate']:.0f} entries/s "
            f"(cpu {r['cpu'] * 1000 / max(r['entries'], 1):.2f} ms/entry, peak RSS {r['rss_mib']:.0f} MiB, "
            f"load {r['load']:.2f})"
        )
    print(f"  best: {best_reader['rate']:.0f} entries/s\n")
    head = (
        "| backend | workers | articles/s | x reader | alerts | bulk alert p50 / p99 s "
        f"| steady ({args.rate:g}/s) alert p50 / p99 s | peak RSS MiB poller / workers / sender / valkey "
        "| Redis MB per 100k articles | load |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in runs:
        workers_rss = " ".join(f"{v:.0f}" for k, v in r["rss"].items() if k.startswith("worker"))
        print(
            f"| {r['backend']} | {r['workers']} | {r['rate']:.0f} | {r['rate'] / best_reader['rate']:.2f} "
            f"| {r['alerts']} | {r['bulk_p50']:.2f} / {r['bulk_p99']:.2f} "
            f"| {r['steady_p50']:.3f} / {r['steady_p99']:.3f} (n={r['steady_n']}) "
            f"| {r['rss']['poller']:.0f} / {workers_rss} / {r['rss'].get('sender', 0):.0f} "
            f"/ {r['rss']['valkey']:.0f} "
            f"| {r['redis_delta'] / max(r['stored'], 1) * 100_000 / 1e6:.0f} "
            f"| {r['load_start']:.2f} -> {r['load_end']:.2f} |"
        )
    print(
        "\nCPU ms per article per stage, bulk phase (fetch* = poller CPU minus parse and queue; "
        "queue = seen-entry check, enqueue, feed state; "
        "alert = outbox rows, the bell and the whole sender process; "
        "job other = entry decoding, logs, metrics; rq = worker CPU outside jobs; valkey = server CPU):"
    )
    names = list(stage_ms(runs[0])) if runs else []
    print("| backend | workers | " + " | ".join(names) + " | total |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for r in runs:
        ms = stage_ms(r)
        print(
            f"| {r['backend']} | {r['workers']} | "
            + " | ".join(f"{ms[k]:.2f}" for k in names)
            + f" | {sum(ms.values()):.2f} |"
        )
    if runs:
        last = runs[-1]
        print(
            "\nRedis memory by key family after the bulk phase of the last run (MiB): "
            + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in list(last["redis_families"].items())[:6])
        )
        top = sorted(last["commands"].items(), key=lambda kv: -kv[1])[:8]
        print(
            "valkey server time by command over the bulk phase of the last run (us per article): "
            + ", ".join(f"{k} {v / last['stored']:.0f}" for k, v in top)
        )
        bad = sum(r["bad_signatures"] for r in runs)
        print(f"webhook signatures verified by the receiver (HMAC-SHA256): {bad} bad")
        again = sum(r["duplicates"] for r in runs)
        print(f"webhook-ids received more than once (each alert is sent once when nothing fails): {again}")
