"""What every long-running process does the same way: stop on request, prove it is alive.

- A stop request is `workers.stop.Stop`: the first SIGTERM/SIGINT asks, the second insists.
- Liveness: with INGEST_HEARTBEAT_FILE set, the main loop touches that file at least every
  BEAT_SECONDS; `ingest health` (a container healthcheck) says whether it is fresh.
- Exit: a thread stuck in a database or network call must not keep a stopped process alive,
  so a process whose work threads have not ended EXIT_GRACE seconds after its loop ended
  leaves at once (`os._exit`), after flushing its output.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.thread import _worker as _pool_worker
from pathlib import Path
from typing import Any

from ingest.log import get_logger

log = get_logger(__name__)

BEAT_SECONDS = 5.0
EXIT_GRACE = 3.0
HEARTBEAT_ENV = "INGEST_HEARTBEAT_FILE"


class Liveness:
    """Touches the heartbeat file, at most once per second; does nothing without INGEST_HEARTBEAT_FILE."""

    def __init__(self, path: str | None = None) -> None:
        value = path if path is not None else os.environ.get(HEARTBEAT_ENV, "")
        self.path = Path(value) if value else None
        self._at = 0.0

    def __call__(self) -> None:
        if self.path is None or time.monotonic() - self._at < 1.0:
            return
        self._at = time.monotonic()
        try:
            self.path.touch()
        except OSError as exc:
            log.warning("heartbeat_file_failed", path=str(self.path), error=str(exc))


def heartbeat_age(path: str) -> float | None:
    """Seconds since the heartbeat file was touched, or None if it does not exist."""
    try:
        return max(0.0, time.time() - Path(path).stat().st_mtime)
    except OSError:
        return None


def exit_when_done(code: int) -> int:
    """Return `code`, unless non-daemon threads outlive EXIT_GRACE: then flush and leave at once.

    Stop signals are ignored from here on: the exit is bounded already, and the interpreter's
    shutdown resets Python handlers to the default, so a SIGTERM forwarded by `ingest up` just
    after a Ctrl-C would otherwise kill the process half-way through its exit.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    deadline = time.monotonic() + EXIT_GRACE
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [
        t.name
        for t in threading.enumerate()
        if t.is_alive() and not t.daemon and t is not threading.main_thread()
    ]
    if not stuck:
        return code
    log.warning("exit_with_threads_stuck", threads=stuck)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class DaemonExecutor(ThreadPoolExecutor):
    """A thread pool whose threads never hold the process: the default executor of our event loops.

    `asyncio.run` waits for its default executor's threads, and the interpreter joins pool threads
    at exit; a thread stuck in a call to a database that does not answer would keep a stopped
    process alive. These threads are daemons, never registered for that join, and `shutdown` (which
    `asyncio.run` calls after every loop) leaves them to serve the next loop.
    """

    def _adjust_thread_count(self) -> None:
        if self._idle_semaphore.acquire(timeout=0):
            return
        if len(self._threads) >= self._max_workers:
            return

        def wake_on_collect(_: object, work: Any = self._work_queue) -> None:
            work.put(None)

        thread = threading.Thread(
            name=f"io-{len(self._threads)}", daemon=True, target=_pool_worker,
            args=(weakref.ref(self, wake_on_collect), self._work_queue, self._initializer, self._initargs),
        )  # fmt: skip
        thread.start()
        self._threads.add(thread)  # type: ignore[attr-defined]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing: the threads are daemons and serve the process's next event loop."""


_EXECUTOR: DaemonExecutor | None = None


def use_daemon_threads() -> None:
    """Make the running event loop's `to_thread` calls use the process's daemon threads."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = DaemonExecutor(max_workers=16, thread_name_prefix="io")
    asyncio.get_running_loop().set_default_executor(_EXECUTOR)
