"""A throwaway PostgreSQL server for tests and benchmarks when the machine's does not answer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from testkit.servers import free_port


def _pg_bindir() -> Path:
    """Where initdb/pg_ctl live: on PATH, else the newest Debian-layout install."""
    import glob
    import shutil

    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError("PostgreSQL does not answer and no initdb/pg_ctl is installed")
    return Path(candidates[-1]).parent


def start_postgres() -> tuple[str, Callable[[], None]]:
    """A throwaway PostgreSQL server in a temp dir on a free port; returns its admin URL and a stopper."""
    import shutil
    import subprocess
    import tempfile

    bindir, port = _pg_bindir(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ingest-test-pg-"))  # not under pytest's root-only dirs
    datadir = workdir / "pgdata"
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(workdir, "postgres")

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr or done.stdout}")

    run(str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(datadir),
        "-o",
        options,
        "-w",
        "-l",
        str(workdir / "server.log"),
        "start",
    )

    def stop() -> None:
        run(str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)

    return f"postgresql://postgres@127.0.0.1:{port}/postgres", stop


def admin_or_throwaway(admin: str) -> tuple[str, Callable[[], None] | None]:
    """`admin` if it answers, else a throwaway server's admin URL and its stopper."""
    import psycopg

    try:
        psycopg.connect(admin, connect_timeout=3).close()
        return admin, None
    except psycopg.OperationalError:
        return start_postgres()


@contextmanager
def fresh_database(admin: str, name: str) -> Iterator[str]:
    """A database `name` created empty on `admin`'s server (dropped first if left over), dropped after."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{admin.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
