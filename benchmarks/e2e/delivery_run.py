"""`delivery.py`'s runs: the service on the feed farm, one subscription per loopback receiver."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.e2e import receivers
from benchmarks.e2e.common import (
    GO_KEY,
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
)
from benchmarks.e2e.service import running, seed


class DeliveryBench:
    """Farm, receivers, Valkey and database shared by the runs of one invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        from benchmarks import farm

        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-delivery-"))
        self.farm_proc, self.farm_port = farm.start(
            args.corpus, feeds=args.feeds, items=args.items, hosts=args.hosts, syndicated=0.0
        )
        self.recv_proc, self.recv_ports, self.recv_control = receivers.start(args.receivers, SECRET)
        self.valkey, self.redis_url = start_valkey(self.workdir / "redis")
        self.urls = [
            f"http://127.0.0.{1 + f % args.hosts}:{self.farm_port}/feed/{f}" for f in range(args.feeds)
        ]
        self.total = args.feeds * args.items
        self.db = Database(args.backend, self.workdir, args.pg_admin)
        self.load_start = os.getloadavg()

    def farm(self, route: str) -> Any:
        return get_json(f"http://127.0.0.1:{self.farm_port}/_farm/{route}")

    def receivers(self, route: str) -> dict[str, Any]:
        return dict(get_json(f"http://127.0.0.1:{self.recv_control}/{route}"))

    def close(self) -> None:
        for proc in (self.farm_proc, self.recv_proc):
            proc.terminate()
        self.valkey.terminate()
        self.valkey.wait(10)
        self.db.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def subscriptions(self) -> list[tuple[str, str, str]]:
        """Subscription n posts to receiver n and matches `--per-article` feeds' articles."""
        args, subs = self.args, []
        for n, port in enumerate(self.recv_ports):
            feeds = [f for f in range(args.feeds) if (f - n) % args.receivers < args.per_article]
            query = " OR ".join(f"feed:{self.urls[f]}" for f in feeds) or "nothing-matches-this"
            subs.append((f"sub_{n:03d}", query, f"http://127.0.0.1:{port}/hook"))
        return subs

    # -- one run -------------------------------------------------------------------------------
    def run(self, hostile: bool, tag: str) -> dict[str, Any]:
        import redis

        from ingest.store import open_store

        roles = list(receivers.HOSTILE) if hostile else []
        client = redis.Redis.from_url(self.redis_url)
        client.flushall()
        self.farm("reset")
        self.receivers(f"reset?roles={','.join(roles)}")
        bad = {f"sub_{n:03d}" for n in range(len(roles))}
        load_start = os.getloadavg()[0]
        extra = (
            {"INGEST_WEBHOOK_TIMEOUT": str(self.args.webhook_timeout)} if self.args.webhook_timeout else {}
        )
        with self.db.fresh(tag) as db_url:
            store = open_store(db_url)
            try:
                seed(store, self.urls, self.args.interval, self.subscriptions(), SECRET)
                env = service_env(self.redis_url, db_url, self.workdir / "data", **extra)
                with running(client, env, self.args.workers, self.workdir / f"{tag}.log") as procs:
                    label = "with 4 bad" if hostile else "all healthy"
                    result = self._measure(client, db_url, store, procs, bad, label)
                    result["stop_seconds"] = _stop(procs["sender"])
                result["circuits"] = {r.origin: r.state for r in store.get_receivers()}
            finally:
                store.close()
        client.close()
        result.update(hostile=hostile, load_start=load_start, load_end=os.getloadavg()[0])
        return result

    def _pending_healthy(self, db_url: str, bad: set[str]) -> int:
        excluded = ",".join(f"'{s}'" for s in sorted(bad)) or "''"
        return count_rows(
            db_url,
            f"SELECT count(*) FROM alerts WHERE status = 'pending' AND subscription_id NOT IN ({excluded})",
        )

    def _wait(self, client: Any, db_url: str, want: int, bad: set[str], progress: Progress) -> int:
        deadline = time.monotonic() + self.args.timeout
        while True:
            stored = count_rows(db_url, "SELECT count(*) FROM articles")
            pending = self._pending_healthy(db_url, bad)
            busy = client.llen("rq:queue:ingest") + client.zcard("rq:wip:ingest")
            progress.show(stored, want, f"healthy pending {pending:4d}")
            if (stored >= want and pending == 0 and busy == 0) or time.monotonic() > deadline:
                return stored
            time.sleep(0.1)

    def _measure(self, client: Any, db_url: str, store: Any, procs: dict[str, Any], bad: set[str],
                 label: str) -> dict[str, Any]:  # fmt: skip
        progress = Progress(f"{label}: bulk")
        sender_pid = procs["sender"].pid
        sender_before = cpu_seconds(sender_pid)
        client.set(GO_KEY, 1)
        stored = self._wait(client, db_url, self.total, bad, progress)
        sender_cpu = cpu_seconds(sender_pid) - sender_before
        time.sleep(0.5)  # the meters flush every 0.2 s
        stages = {k.decode(): float(v) for k, v in client.hgetall(STAGES_KEY).items()}
        queueing = stages.get("worker:outbox:cpu", 0.0) + stages.get("worker:wake:cpu", 0.0)
        delivered = count_rows(db_url, "SELECT count(*) FROM alerts WHERE status = 'delivered'")
        alerts = count_rows(db_url, "SELECT count(*) FROM alerts")
        dump = self.receivers("dump")
        healthy = [r for r in dump["requests"] if r[4] == "healthy"]
        first = self.farm("stats")["first_request"]
        last_store = _last_stored(store)
        seconds = max(max((r[3] for r in healthy), default=0.0), last_store) - first
        progress.done(f"{stored} articles, {delivered} alerts delivered in {seconds:.2f} s "
                      f"= {stored / seconds:.0f} articles/s")  # fmt: skip
        steady, new_items = self._steady(client, db_url, bad, len(dump["requests"]), label)
        dump = self.receivers("dump")
        return {
            "label": label, "stored": stored, "seconds": seconds, "rate": stored / seconds,
            "alerts": alerts, "delivered": delivered, "sender_cpu": sender_cpu, "queueing_cpu": queueing,
            "cpu_per_alert_ms": (sender_cpu + queueing) * 1000 / max(delivered, 1),
            "steady_n": len(steady), "steady_p50": pct(steady, 0.5), "steady_p99": pct(steady, 0.99),
            "new_items": new_items, "requests": dump["requests"], "bad_signatures": dump["bad_signatures"],
            "overlaps": receivers.overlaps(dump["requests"]),
        }  # fmt: skip

    def _steady(self, client: Any, db_url: str, bad: set[str], seen_requests: int,
                label: str) -> tuple[list[float], int]:  # fmt: skip
        """New items at `--rate` for `--steady` s: healthy receivers' latency from the poll that saw each."""
        args = self.args
        if args.steady <= 0:
            return [], 0
        self.farm(f"grow?rate={args.rate}")
        phase = Progress(f"{label}: steady {args.rate:g}/s")
        end = time.monotonic() + args.steady
        while time.monotonic() < end:
            phase.show(int(args.steady - (end - time.monotonic())), int(args.steady), "s")
            time.sleep(0.5)
        new_items = int(self.farm("stop")["new_items"])
        self._wait(client, db_url, self.total + new_items, bad, phase)
        time.sleep(0.3)
        seen = self.farm("seen")
        later = self.receivers("dump")["requests"][seen_requests:]
        steady = [r[3] - seen[r[6]] for r in later if r[4] == "healthy" and r[6] in seen]
        phase.done(f"{new_items} new items, {len(steady)} healthy alerts, latency p50 "
                   f"{pct(steady, 0.5):.3f} s p99 {pct(steady, 0.99):.3f} s")  # fmt: skip
        return steady, new_items


def _last_stored(store: Any) -> float:
    """Epoch seconds of the last article stored."""
    newest = store.list_articles(limit=1)
    return newest[0].fetched_at.timestamp() if newest else 0.0


def _stop(proc: Any) -> float:
    """Seconds from SIGTERM to the sender's exit (attempts to hanging receivers still in flight)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except Exception:
        return float("nan")
    return time.monotonic() - started


def outcomes(requests: list[list[Any]]) -> dict[str, tuple[int, float]]:
    """Per receiver role: requests and their longest duration in seconds."""
    counts: Counter[str] = Counter()
    longest: dict[str, float] = {}
    for _, _, start, end, outcome, *_ in requests:
        role = str(outcome).split(":")[0]
        counts[role] += 1
        longest[role] = max(longest.get(role, 0.0), (end or start) - start)
    return {role: (counts[role], longest[role]) for role in counts}
