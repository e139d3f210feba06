"""Periodic sweeps that run once per period across every process that could run them.

Several pollers each try the lost-batch recovery, several senders each try digest cutting;
before running, a process takes the sweep's lease in the database (`LeaseStore.take_lease`) for
one period. The first to ask in a period runs it; the others find the lease held and skip it.
The lease is not given back after the sweep: it is what keeps the period. A process that dies
mid-sweep holds it only until the period ends; the next period runs elsewhere.

Why the database and not Redis (SET NX PX): the sweeps write to the database, which is the
record; a deployment with the embedded Redis and SQLite needs nothing else, and a sweep never
runs twice because a Redis restart forgot a key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from ingest.log import get_logger
from ingest.models import utcnow
from ingest.store.leases import LeaseStore

log = get_logger(__name__)

LOOK_SECONDS = 1.0  # a process asks the database for a sweep's lease at most this often


class Sweeps:
    """One process's side of the shared sweeps: `run(name, period, job)` runs `job` if this
    process gets the period's lease."""

    def __init__(self, store: LeaseStore, owner: str) -> None:
        self.store = store
        self.owner = owner
        self._next_look: dict[str, float] = {}

    def run(self, name: str, period: float, job: Callable[[], object]) -> bool:
        """Run `job` when the lease `name` is free and this process takes it; whether it ran."""
        if time.monotonic() < self._next_look.get(name, 0.0):
            return False
        self._next_look[name] = time.monotonic() + min(LOOK_SECONDS, period)
        now = utcnow()
        if not self.store.take_lease(name, self.owner, now, now + timedelta(seconds=period)):
            return False
        started = time.monotonic()
        result = job()
        log.info("sweep_ran", sweep=name, owner=self.owner, result=result,
                 seconds=round(time.monotonic() - started, 3))  # fmt: skip
        return True
