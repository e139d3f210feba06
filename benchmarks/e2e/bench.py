"""`pipeline.py`'s runs: `reader` on the farm, then the service (poller, workers, sender) on it."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.e2e.children import command
from benchmarks.e2e.common import (
    GO_KEY,
    ROOT,
    SECRET,
    STAGES_KEY,
    Database,
    Progress,
    count_rows,
    cpu_seconds,
    get_json,
    pct,
    service_env,
    start_valkey,
    vmhwm,
)
from benchmarks.e2e.queries import make_queries
from benchmarks.e2e.service import running, seed


class Bench:
    """Everything one invocation shares: farm, receiver, Redis, corpus, queries."""

    def __init__(self, args: argparse.Namespace) -> None:
        from benchmarks import farm, receiver
        from benchmarks.farm import load_corpus

        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-e2e-"))
        self.docs = load_corpus(args.corpus)
        self.queries = make_queries(self.docs, args.subs)
        self.farm_proc, self.farm_port = farm.start(
            args.corpus, feeds=args.feeds, items=args.items, hosts=args.hosts, syndicated=args.syndicated
        )
        self.recv_proc, self.recv_port = receiver.start(SECRET)
        self.valkey, self.redis_url = start_valkey(self.workdir / "redis")
        self.urls = [
            f"http://127.0.0.{1 + f % args.hosts}:{self.farm_port}/feed/{f}" for f in range(args.feeds)
        ]
        self.total = args.feeds * args.items
        self.db = {b: Database(b, self.workdir, args.pg_admin) for b in args.backends}
        self.reader_best: dict[str, Any] | None = None
        self.load_start = os.getloadavg()

    def farm(self, route: str) -> Any:
        return get_json(f"http://127.0.0.1:{self.farm_port}/_farm/{route}")

    def received(self, reset: bool = False) -> dict[str, Any]:
        return dict(get_json(f"http://127.0.0.1:{self.recv_port}/_recv/{'reset' if reset else 'dump'}"))

    def close(self) -> None:
        for proc in (self.farm_proc, self.recv_proc):
            proc.terminate()
        self.valkey.terminate()
        self.valkey.wait(10)
        for db in self.db.values():
            db.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- reader ----------------------------------------------------------------------------
    def run_reader(self) -> dict[str, Any]:
        self.farm("reset")
        urls_file = self.workdir / "urls.txt"
        urls_file.write_text("\n".join(self.urls))
        db = self.workdir / "reader.sqlite"
        db.unlink(missing_ok=True)
        progress = Progress("reader update_feeds(workers=4)")
        progress.show(0, self.total)
        load = os.getloadavg()[0]
        done = subprocess.run(command("reader", str(db), str(urls_file)), capture_output=True, text=True,
                              check=False, timeout=600, cwd=ROOT)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"reader failed: {done.stderr[-2000:]}")
        out = json.loads(done.stdout.strip().splitlines()[-1])
        out["rate"] = out["entries"] / out["seconds"]
        out["load"] = load
        progress.done(
            f"{out['entries']} entries in {out['seconds']:.2f} s = {out['rate']:.0f} entries/s "
            f"(cpu {out['cpu'] * 1000 / max(out['entries'], 1):.2f} ms/entry, load {load:.2f})"
        )
        if self.reader_best is None or out["rate"] > self.reader_best["rate"]:
            self.reader_best = out
        return out

    # -- the service -----------------------------------------------------------------------
    def run_ours(self, backend: str, workers: int, tag: str) -> dict[str, Any]:
        import redis

        from ingest.store import open_store

        client = redis.Redis.from_url(self.redis_url)
        client.flushall()
        self.farm("reset")
        self.received(reset=True)
        load_start = os.getloadavg()[0]
        with self.db[backend].fresh(tag) as db_url:
            store = open_store(db_url)
            hook = f"http://127.0.0.1:{self.recv_port}/hook"
            subs = [(f"sub_{n:05d}", q, hook) for n, q in enumerate(self.queries)]
            seed(store, self.urls, self.args.interval, subs, SECRET)
            env = service_env(self.redis_url, db_url, self.workdir / "data")
            try:
                with running(client, env, workers, self.workdir / f"{tag}.log") as procs:
                    label = f"{backend} x{workers} worker{'s' if workers > 1 else ''}"
                    mem_before = int(client.info("memory")["used_memory"])
                    client.config_resetstat()  # per-command server time from here on (our own server)
                    result = self._measure(client, db_url, store, procs, Progress(label), mem_before)
            finally:
                store.close()
        client.close()
        result.update(backend=backend, workers=workers, load_start=load_start, load_end=os.getloadavg()[0])
        return result

    def _settled(self, client: Any, db_url: str, want: int) -> tuple[bool, int, int]:
        stored = count_rows(db_url, "SELECT count(*) FROM articles")
        pending = count_rows(db_url, "SELECT count(*) FROM alerts WHERE status = 'pending'")
        busy = client.llen("rq:queue:ingest") + client.zcard("rq:wip:ingest")
        return stored >= want and pending == 0 and busy == 0, stored, pending

    def _wait(self, client: Any, db_url: str, want: int, progress: Progress, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            ok, stored, pending = self._settled(client, db_url, want)
            progress.show(stored, want, f"pending alerts {pending:4d}")
            if ok or time.monotonic() > deadline:
                return stored
            time.sleep(0.1)

    def _measure(self, client: Any, db_url: str, store: Any, procs: dict[str, subprocess.Popen[bytes]],
                 progress: Progress, mem_before: int) -> dict[str, Any]:  # fmt: skip
        args = self.args
        pids = {name: p.pid for name, p in procs.items()}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        valkey_cpu = cpu_seconds(self.valkey.pid)
        client.set(GO_KEY, 1)
        stored = self._wait(client, db_url, self.total, progress, args.timeout)
        time.sleep(0.5)  # the meters flush every 0.2 s
        stages = {k.decode(): float(v) for k, v in client.hgetall(STAGES_KEY).items()}
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu["valkey"] = cpu_seconds(self.valkey.pid) - valkey_cpu
        mem_after = int(client.info("memory")["used_memory"])
        families = redis_families(client)
        stats_by_command = client.info("commandstats").items()
        commands = {k.removeprefix("cmdstat_"): int(v["usec"]) for k, v in stats_by_command}
        stats = self.farm("stats")
        newest = store.list_articles(limit=1)
        recv = self.received()
        seen = self.farm("seen")
        last_arrival = max((a[0] for a in recv["arrivals"]), default=0.0)
        last_store = newest[0].fetched_at.timestamp() if newest else 0.0
        seconds = max(last_arrival, last_store) - stats["first_request"]
        bulk_lat = [a[0] - seen[a[3]] for a in recv["arrivals"] if a[3] in seen]
        alerts_bulk = len(recv["arrivals"])
        rate = stored / seconds
        progress.done(f"{stored} articles, {alerts_bulk} alerts in {seconds:.2f} s = {rate:.0f}/s")
        steady, new_items, recv = self._steady(client, db_url, alerts_bulk, recv)
        rss = {name: vmhwm(pid) for name, pid in pids.items()}
        rss["valkey"] = vmhwm(self.valkey.pid)
        return {
            "stored": stored, "seconds": seconds, "rate": stored / seconds, "alerts": alerts_bulk,
            "bulk_p50": pct(bulk_lat, 0.5), "bulk_p99": pct(bulk_lat, 0.99),
            "steady_n": len(steady), "steady_p50": pct(steady, 0.5), "steady_p99": pct(steady, 0.99),
            "new_items": new_items, "stages": stages, "cpu": cpu, "rss": rss,
            "redis_delta": mem_after - mem_before, "redis_families": families, "commands": commands,
            "bad_signatures": recv["bad_signatures"], "requests": stats,
            "duplicates": len(recv["arrivals"]) - len({a[1] for a in recv["arrivals"]}),
        }  # fmt: skip

    def _steady(self, client: Any, db_url: str, alerts_bulk: int,
                recv: dict[str, Any]) -> tuple[list[float], int, dict[str, Any]]:  # fmt: skip
        """New items at a set rate for a while: alert latency from the poll that first carried each."""
        args = self.args
        if args.steady <= 0:
            return [], 0, recv
        self.farm(f"grow?rate={args.rate}")
        phase = Progress(f"  steady {args.rate:g} items/s")
        end = time.monotonic() + args.steady
        while time.monotonic() < end:
            phase.show(int(args.steady - (end - time.monotonic())), int(args.steady), "s")
            time.sleep(0.5)
        new_items = int(self.farm("stop")["new_items"])
        self._wait(client, db_url, self.total + new_items, phase, args.timeout)
        time.sleep(0.5)
        recv = self.received()
        seen = self.farm("seen")
        steady = [a[0] - seen[a[3]] for a in recv["arrivals"][alerts_bulk:] if a[3] in seen]
        phase.done(
            f"{new_items} new items, {len(steady)} alerts, latency p50 {pct(steady, 0.5):.3f} s "
            f"p99 {pct(steady, 0.99):.3f} s"
        )
        return steady, new_items, recv


def redis_families(client: Any) -> dict[str, int]:
    """Bytes per key family (MEMORY USAGE of every key; our own server, a few thousand keys)."""
    sizes: dict[str, int] = defaultdict(int)
    for key in client.scan_iter(count=1000):
        name = key.decode(errors="replace")
        if name.startswith("bench:"):
            continue
        family = (
            "rq job"
            if name.startswith("rq:job:")
            else ("rq other" if name.startswith("rq:") else re.sub(r"[:][^:]*$", ":*", name))
        )
        family = re.sub(r"\d+", "N", family)
        sizes[family] += int(client.memory_usage(key) or 0)
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))
