"""Polling at scale: one pass over 100,000 feeds on 1,000 loopback hosts, 1 and 2 pollers, failover, reader.

    .venv/bin/python benchmarks/polling.py [--feeds 100000] [--hosts 1000] [--pollers 1,2]
        [--reader-feeds 20000] [--reader-workers 4,8,16,32] [--no-reader] [--no-failover]
        [--pg-admin postgresql://postgres@127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379/13]
        [--latency-ms 2] [--fetch-timeout 5] [--profile DIR]

The farm (`benchmarks/poll_farm.py`) serves the feeds from two processes; 95 % of them answer 304
to the poller's conditional GET, 5 % have one new item. Each run gets a fresh PostgreSQL database
loaded in bulk (`benchmarks/poll_rig.py`: feeds due now with the ETag of the last poll, the changed
feeds' earlier entries seen) and a flushed Redis database; the pollers are child processes
running the poller loop of `app.poller` (started together once they are connected; start-up is
not timed). Figures, per run:

- wall: start signal -> the last feed recorded (the pollers' passes done);
- CPU ms per feed: user + system CPU of all pollers / feeds; peak RSS per poller;
- fetches per feed at the farm (min / mean / max: exactly 1 wanted), entries queued (the new ones:
  one per changed feed);
- the per-host cap at the farm: most requests open at once to one host, all pollers together;
- failover: 2 pollers, one SIGKILLed when 30 % of the feeds are fetched; seconds until every
  feed was fetched, feeds fetched twice (fetched but not recorded by the killed one);
- reader (lemon24/reader, a benchmark-only dependency: `pip install reader`) on the first
  `--reader-feeds` feeds, same mix: one untimed first update, then per N a timed
  `update_feeds(workers=N)` after 5 % of its feeds changed; the best N against our 1-poller pass.

The table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import poll_farm, poll_rig  # noqa: E402 - after the path insert
from benchmarks.poll_farm import feed_url  # noqa: E402


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_redis_db(wanted: str) -> str:
    """`wanted` if its db lacks the test-run marker, else the highest empty db of that server."""
    client = redis.Redis.from_url(wanted)
    busy = client.exists("ingest-test-run")
    client.close()
    if not busy:
        return wanted
    base = wanted.rsplit("/", 1)[0]
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{db}")
        empty = client.dbsize() == 0
        client.close()
        if empty:
            return f"{base}/{db}"
    raise SystemExit(f"{wanted} is in use by a test run and no other db is empty; pick one with --redis")


@dataclass
class Run:
    """One run's figures."""

    name: str
    feeds: int
    pollers: int
    wall: float = 0.0
    cpu: float = 0.0
    rss: list[float] = field(default_factory=list)
    fetches: tuple[int, float, int] = (0, 0.0, 0)
    queued: int = 0
    expected: int = 0
    cap: int = 0
    coverage: float | None = None
    covered: int = 0
    twice: int = 0
    load_seconds: float = 0.0
    load: float = 0.0

    @property
    def rate(self) -> float:
        return self.feeds / self.wall if self.wall else 0.0


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.procs, self.port, self.counters = poll_farm.start(
            args.feeds, args.hosts, procs=2, latency=args.latency_ms / 1000
        )
        self.redis_url = _free_redis_db(args.redis)
        self.redis = redis.Redis.from_url(self.redis_url)
        self.fetches = self.counters.view("fetches")
        self.versions = self.counters.view("versions")
        self.changed = [f for f in range(args.feeds) if poll_rig.changed(f, args.hosts)]

    def close(self) -> None:
        self.redis.flushdb()
        for proc in self.procs:
            proc.terminate()

    def _farm_state(self) -> None:
        """Versions as the database was loaded (all 0), then 5 % one version newer; counts zeroed."""
        self.counters.reset()
        self.versions[:] = 0
        self.versions[self.changed] = 1

    def _env(self, db_url: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": db_url,
            "REDIS_URL": self.redis_url,
            "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8",
            "INGEST_LOG_LEVEL": "error",
            "INGEST_FETCH_TIMEOUT": str(self.args.fetch_timeout),
            "INGEST_FETCH_PER_HOST": str(self.args.per_host),
            "INGEST_POLL_INTERVAL": "3600",  # no feed due again within a run (a slow pass outlasts 600 s)
        }

    def run(self, name: str, pollers: int, *, kill_at: float | None = None, profile: bool = False) -> Run:
        args = self.args
        out = Run(name, args.feeds, pollers, expected=len(self.changed), load=os.getloadavg()[0])
        self.redis.flushdb()
        self._farm_state()
        tag = "".join(c if c.isalnum() else "_" for c in name.lower())[:24]
        with poll_rig.database(args.pg_admin, tag) as db_url:
            out.load_seconds = poll_rig.load(db_url, args.feeds, args.hosts, self.port)
            err(f"{name}: {args.feeds} feeds loaded in {out.load_seconds:.1f} s")
            children = [self._spawn(db_url, profile and n == 0) for n in range(pollers)]
            while self.redis.scard(poll_rig.READY_KEY) < pollers:
                if any(c.poll() is not None for c in children):
                    raise SystemExit(
                        f"a poller died: {children[0].stderr.read() if children[0].stderr else ''}"
                    )
                time.sleep(0.05)
            go = time.time()
            self.redis.set(poll_rig.GO_KEY, 1)
            try:
                killed = self._watch(name, children, go, kill_at, out)
                figures = self._stop(children, killed)
            finally:
                for child in children:
                    if child.poll() is None:
                        child.kill()
            out.wall = max(f["last_work"] for f in figures) - go
            out.cpu = sum(f["cpu"] for f in figures)
            out.rss = [f["rss_mib"] for f in figures]
            out.fetches = (int(self.fetches.min()), float(self.fetches.mean()), int(self.fetches.max()))
            out.twice = int((self.fetches > 1).sum())
            out.cap = int(self.counters.view("open_max").max())
            out.queued = poll_rig.queued_entries(db_url)
        err(f"{name}: {out.wall:.1f} s, {out.cpu * 1000 / out.feeds:.2f} ms CPU per feed")
        return out

    def _spawn(self, db_url: str, profile: bool) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", "poller"],
            env=self._env(db_url),
            stdout=subprocess.PIPE,
            text=True,
        )
        if profile and self.args.profile:  # sampled from outside, all threads: py-spy
            out = Path(self.args.profile) / f"poller-{child.pid}.txt"
            spy = str(Path(sys.executable).parent / "py-spy")
            subprocess.Popen([spy, "record", "--pid", str(child.pid), "--threads", "--rate", "100",
                              "--format", "raw", "--output", str(out), "--nonblocking"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return child

    def _watch(
        self, name: str, children: list[subprocess.Popen[str]], go: float, kill_at: float | None, out: Run
    ) -> int | None:
        """Wait for full coverage (or no progress for longer than a lease) and idle pollers;
        SIGKILL the first poller once `kill_at` of the feeds are fetched."""
        total, killed, last, progress, before = self.args.feeds, None, 0.0, time.time(), -1
        stall = 2 * self.args.fetch_timeout + 5
        while True:
            done = int((self.fetches > 0).sum())
            if done != before:
                progress, before = time.time(), done
            if kill_at is not None and killed is None and done >= kill_at * total:
                children[0].send_signal(signal.SIGKILL)
                killed = 0
                err(f"{name}: poller {children[0].pid} killed at {done} feeds, {time.time() - go:.1f} s")
            if done >= total and out.coverage is None:
                out.coverage = time.time() - go
            since = go + out.coverage if out.coverage is not None else progress
            if (out.coverage is not None or time.time() - progress > stall) and self._idle(
                children, killed, since
            ):
                out.covered = done
                return killed
            if time.time() - last > 5:
                err(f"{name}: {done}/{total} fetched, {time.time() - go:.0f} s")
                last = time.time()
            if time.time() - go > self.args.max_seconds:
                raise SystemExit(f"{name}: no full coverage after {self.args.max_seconds} s ({done}/{total})")
            time.sleep(0.02)

    def _idle(self, children: list[subprocess.Popen[str]], killed: int | None, since: float) -> bool:
        """Every live poller has found nothing due after `since`."""
        for n, child in enumerate(children):
            if n == killed:
                continue
            idle = self.redis.get(f"{poll_rig.IDLE_KEY}:{child.pid}:idle")
            if idle is None or float(idle) < since:
                return False
        return True

    def _stop(self, children: list[subprocess.Popen[str]], killed: int | None) -> list[dict[str, Any]]:
        figures = []
        for n, child in enumerate(children):
            if n == killed:
                child.wait()
                continue
            child.send_signal(signal.SIGTERM)
            stdout, _ = child.communicate(timeout=120)
            figures.append(json.loads(stdout.strip().splitlines()[-1]))
        return figures

    def reader(self) -> list[dict[str, Any]]:
        """reader on the first --reader-feeds feeds: warm-up, then a timed update per N."""
        args = self.args
        feeds = min(args.reader_feeds, args.feeds)
        self._farm_state()
        self.versions[:] = 0
        workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-reader-"))
        urls = workdir / "urls.txt"
        urls.write_text("\n".join(feed_url(f, args.hosts, self.port) for f in range(feeds)))
        err(f"reader: adding {feeds} feeds and fetching them once (untimed)")
        child = subprocess.Popen(
            [sys.executable, __file__, "--child", "reader", "--reader-db", str(workdir / "r.sqlite"),
             "--urls-file", str(urls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdin and child.stdout
        json.loads(child.stdout.readline())
        mine = [f for f in self.changed if f < feeds]
        results = []
        for workers in args.reader_workers:
            self.versions[mine] += 1
            self.counters.reset()
            child.stdin.write(f"{workers}\n")
            child.stdin.flush()
            result = json.loads(child.stdout.readline())
            result.update(feeds=feeds, rate=feeds / result["seconds"], expected=len(mine),
                          fetches=float(self.fetches[:feeds].mean()))  # fmt: skip
            err(f"reader workers={workers}: {result['seconds']:.1f} s, {result['rate']:.0f} feeds/s")
            results.append(result)
        child.stdin.close()
        child.wait(60)
        shutil.rmtree(workdir, ignore_errors=True)
        return results


def cap_run(args: argparse.Namespace) -> Run:
    """The per-host cap where it binds: 2 pollers, 2,000 feeds on 10 hosts answering in 20 ms."""
    small = argparse.Namespace(**{**vars(args), "feeds": 2000, "hosts": 10, "latency_ms": 20.0})
    bench = Bench(small)
    try:
        return bench.run("per-host cap (2,000 feeds, 10 hosts, 20 ms)", 2)
    finally:
        bench.close()


def report(
    args: argparse.Namespace, runs: list[Run], readers: list[dict[str, Any]], header: bool = True
) -> None:
    if header:
        pollers_table(args, runs)
    if readers:
        readers_table(runs, readers)


def pollers_table(args: argparse.Namespace, runs: list[Run]) -> None:
    print(f"\n{args.feeds} feeds on {args.hosts} loopback hosts, 5 % with one new entry, 95 % 304; farm "
          f"latency {args.latency_ms} ms; PostgreSQL; INGEST_FETCH_TIMEOUT={args.fetch_timeout}, "
          f"INGEST_FETCH_PER_HOST={args.per_host}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(
        "| run | pollers | wall s | feeds/s | CPU ms/feed | peak RSS MiB per poller "
        "| fetches/feed min/mean/max "
        "| entries queued (expected) | max open per host | full coverage s | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        cover = f"{r.coverage:.1f}" if r.coverage is not None else f"never ({r.covered} fetched)"
        print(
            f"| {r.name} | {r.pollers} | {r.wall:.1f} | {r.rate:.0f} | {r.cpu * 1000 / r.feeds:.2f} | "
            f"{' / '.join(f'{x:.0f}' for x in r.rss)} | {r.fetches[0]} / {r.fetches[1]:.3f} / {r.fetches[2]} "
            f"({r.twice} twice) | {r.queued} ({r.expected}) | {r.cap} | {cover} | {r.load:.1f} |"
        )
    sys.stdout.flush()


def readers_table(runs: list[Run], readers: list[dict[str, Any]]) -> None:
    if readers:
        best = max(readers, key=lambda x: x["rate"])
        print(f"\nreader update_feeds on {best['feeds']} of the feeds (same mix):")
        print("| workers | wall s | feeds/s | CPU ms/feed | new entries (expected) | fetches/feed |")
        print("|---|---|---|---|---|---|")
        for r in readers:
            cpu = r["cpu"] * 1000 / r["feeds"]
            print(f"| {r['workers']} | {r['seconds']:.1f} | {r['rate']:.0f} | {cpu:.2f} "
                  f"| {r['new']} ({r['expected']}) | {r['fetches']:.3f} |")  # fmt: skip
        ours = next((r for r in runs if r.pollers == 1 and r.coverage is not None), None)
        if ours:
            print(f"\nours (1 poller, {ours.feeds} feeds) / reader (best, workers={best['workers']}): "
                  f"{ours.rate / best['rate']:.2f}x feeds/s; CPU per feed "
                  f"{(best['cpu'] / best['feeds']) / (ours.cpu / ours.feeds):.2f}x less")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--pollers", default="1,2")
    parser.add_argument("--reader-feeds", type=int, default=20_000)
    parser.add_argument("--reader-workers", default="4,8,16,32")
    parser.add_argument("--no-reader", action="store_true")
    parser.add_argument("--no-failover", action="store_true")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--latency-ms", type=float, default=2.0)
    parser.add_argument("--fetch-timeout", type=float, default=5.0)
    parser.add_argument("--per-host", type=int, default=4, help="INGEST_FETCH_PER_HOST of the pollers")
    parser.add_argument("--no-cap", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument(
        "--profile", help="directory for a py-spy profile (collapsed stacks) of the 1-poller run"
    )
    parser.add_argument("--child", choices=["poller", "reader"], help=argparse.SUPPRESS)
    parser.add_argument("--reader-db", help=argparse.SUPPRESS)
    parser.add_argument("--urls-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "poller":
        poll_rig.poller_child()
        return 0
    if args.child == "reader":
        poll_rig.reader_child(args.reader_db, args.urls_file)
        return 0
    args.reader_workers = [int(n) for n in args.reader_workers.split(",")]
    from ingest.log import configure_logging
    from ingest.settings import Settings

    configure_logging(Settings.from_env({"INGEST_LOG_LEVEL": "error"}))
    bench = Bench(args)
    runs: list[Run] = []
    readers: list[dict[str, Any]] = []
    try:
        for n in (int(p) for p in args.pollers.split(",")):
            runs.append(bench.run(f"pass {n}p", n, profile=n == 1))
        if not args.no_failover:
            runs.append(bench.run("failover", 2, kill_at=0.3))
        if not args.no_cap:
            runs.append(cap_run(args))
        report(args, runs, [])  # the pollers' table before reader's long warm-up
        if not args.no_reader:
            readers = bench.reader()
    finally:
        bench.close()
    if readers:
        report(args, runs, readers, header=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
