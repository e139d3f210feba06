"""The service under test: its database seeded, its processes started, stopped after the run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.e2e.children import command
from benchmarks.e2e.common import READY_KEY, ROOT, stop_all


def seed(store: Any, feeds: Sequence[str], interval: int, subs: Sequence[tuple[str, str, str]],
         secret: str) -> None:  # fmt: skip
    """Feeds at a fixed poll interval; subscriptions as (id, query, webhook), all with `secret`."""
    from ingest.models import Subscription, utcnow

    for url in feeds:
        store.add_feed(url, interval=interval)
    for n, (sub_id, query, hook) in enumerate(subs):
        sub = Subscription(id=sub_id, name=f"q{n}", query=query, webhook=hook, secret=secret,
                           created_at=utcnow())  # fmt: skip
        store.add_subscription(sub)


@contextmanager
def running(client: Any, env: dict[str, str], workers: int, log: Path, *,
            senders: int = 1) -> Iterator[dict[str, subprocess.Popen[bytes]]]:  # fmt: skip
    """Workers and senders (loaded, waiting), then the poller (waiting for GO_KEY); all stopped after."""
    logs = open(log, "ab")  # noqa: SIM115 - closed below

    def spawn(role: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(command(role), env=env, stdout=logs, stderr=logs, cwd=ROOT)

    procs = {f"worker{i + 1}": spawn("worker") for i in range(workers)}
    procs |= {f"sender{i + 1}" if senders > 1 else "sender": spawn("sender") for i in range(senders)}
    try:
        _ready(client, procs, len(procs), log)
        procs["poller"] = spawn("poller")
        _ready(client, procs, len(procs), log)
        yield procs
    finally:
        stop_all(procs)
        logs.close()


def _ready(client: Any, procs: dict[str, subprocess.Popen[bytes]], want: int, log: Path) -> None:
    deadline = time.monotonic() + 180
    while client.scard(READY_KEY) < want:
        dead = [name for name, p in procs.items() if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise SystemExit(f"{', '.join(dead) or 'the service'} did not start; see {log}")
        time.sleep(0.1)
