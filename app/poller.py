"""The poller loop: passes over the due feeds (`app.poll_pass`) and the shared sweeps between them.

Any number of pollers run this loop against one database: each claims due feeds with leases,
so a feed is fetched by one of them per due time, and one that dies loses its feeds when their
leases end. What an outcome does to the feed and the queue is `ingest.services.refresh`'s
business. The lost-batch recovery runs once per INGEST_SWEEP_INTERVAL across all pollers
(`ingest.services.sweeps`: whichever takes the period's lease).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from app.lifecycle import use_daemon_threads
from app.poll_pass import PollPass, PollSummary, host_key
from app.runtime import Runtime
from ingest.log import get_logger
from ingest.services.sweeps import Sweeps

log = get_logger(__name__)

MAX_PAUSE = 30.0  # longest pause between two passes after failures

__all__ = ["PollSummary", "host_key", "poll_once", "poller_id", "run_poller"]


def poller_id() -> str:
    """This process's lease owner name: host, pid and a random part (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def poll_once(rt: Runtime, *, only_due: bool = True, owner: str | None = None,
              stop: threading.Event | None = None, sweeps: Sweeps | None = None,
              beat: Callable[[], object] = lambda: None) -> PollSummary:  # fmt: skip
    """Claim and poll the due feeds (or, `only_due=False`, every active feed no other poller holds)
    until none is left, queueing new and changed entries; `sweeps` and `beat` run between claims
    (a pass lasts as long as feeds keep coming due: the heartbeat must not wait for its end)."""
    started = time.monotonic()
    summary = PollSummary()
    owner = owner or poller_id()

    def between() -> None:
        beat()
        if sweeps is not None:
            _sweep(rt, sweeps)

    halted = stop.is_set if stop is not None else (lambda: False)

    async def main() -> int:
        use_daemon_threads()
        return await PollPass(rt, owner, summary, only_due=only_due, stop=halted, between=between).run()

    summary.feeds = asyncio.run(main())
    if summary.feeds:
        rt.metrics.flush()  # the pass's counts in one round trip
    summary.seconds = round(time.monotonic() - started, 3)
    if summary.feeds or not only_due:
        log.info("poll_pass", owner=owner, **summary.as_dict())
    return summary


def _sweep(rt: Runtime, sweeps: Sweeps) -> Any:
    return sweeps.run("recovery", rt.settings.sweep_interval, rt.recovery.recover)


def run_poller(rt: Runtime, stop: threading.Event, *, tick: float = 1.0,
               beat: Any = lambda: None) -> None:  # fmt: skip
    """Poll due feeds and run the shared sweeps until `stop` is set.

    A pass that fails (database or Redis down) is logged and tried again after a pause that
    doubles up to MAX_PAUSE; SIGTERM sets `stop`, which ends a pass within a moment (feeds not
    fetched yet are given back) and the loop.
    """
    owner = poller_id()
    sweeps = Sweeps(rt.store, owner)
    pause = tick
    log.info("poller_started", owner=owner)
    while not stop.is_set():
        try:
            poll_once(rt, only_due=True, owner=owner, stop=stop, sweeps=sweeps, beat=beat)
            _sweep(rt, sweeps)
            pause = tick
        except Exception as exc:  # the loop must outlive any one failure
            log.error("poll_loop_failed", error=f"{type(exc).__name__}: {exc}", retry_in=pause)
            pause = min(pause * 2, MAX_PAUSE)
        beat()
        stop.wait(pause)
    log.info("poller_stopped", owner=owner)
