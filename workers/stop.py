"""Stopping a long-running process: the first SIGTERM/SIGINT asks, the second insists."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType


class Stop:
    """The stop request of a long-running process: the first SIGTERM/SIGINT asks, the second insists.

    RQ installs its own handlers while it works (warm shutdown, then cold); outside `work()`
    (waiting for Redis to come back) these hold, so a stop is honoured in every state. A second
    signal within SAME_REQUEST seconds is the same request arriving twice (Ctrl-C reaches the
    whole process group and `ingest up` forwards a SIGTERM too), not an insistence.
    """

    SAME_REQUEST = 1.0

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None  # the first signal received
        self._first = 0.0

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            if self.repeated():
                return
            raise SystemExit(128 + signum)
        self.request(signum)

    def request(self, signum: int) -> None:
        """Record the first stop request (RQ's own handler reports here too)."""
        if not self.event.is_set():
            self.signal, self._first = signum, time.monotonic()
            self.event.set()

    def repeated(self) -> bool:
        """Whether a signal now is the first stop request arriving again, not an insistence."""
        return self.event.is_set() and time.monotonic() - self._first < self.SAME_REQUEST

    def __bool__(self) -> bool:
        return self.event.is_set()
