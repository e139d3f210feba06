"""Stopping a long-running process: the first SIGTERM/SIGINT asks, the second insists."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Stop:
    """The stop request of a long-running process: the first SIGTERM/SIGINT asks, the second insists.

    RQ installs its own handlers while it works (warm shutdown, then cold); outside `work()`
    (waiting for Redis to come back) these hold, so a stop is honoured in every state.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None  # the first signal received

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise SystemExit(128 + signum)
        self.signal = signum
        self.event.set()

    def __bool__(self) -> bool:
        return self.event.is_set()
