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
import functools
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
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
    """Return `code`, unless non-daemon threads outlive EXIT_GRACE: then flush and leave at once."""
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


class DaemonExecutor(Executor):
    """A thread pool whose threads never hold the process: the default executor of our event loops.

    `asyncio.run` waits for its default executor's threads at exit; a thread stuck in a call to
    a database that does not answer would keep a stopped process alive. These threads are
    daemons, and `shutdown` does not wait for them.
    """

    def __init__(self, workers: int = 8) -> None:
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._work = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name=f"io-{n}") for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._work.put((future, functools.partial(fn, **kwargs) if kwargs else fn, args))
        return future

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing: `asyncio.run` calls this after every loop, and the threads serve the next one."""


_EXECUTOR: DaemonExecutor | None = None


def use_daemon_threads() -> None:
    """Make the running event loop's `to_thread` calls use the process's daemon threads."""
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = DaemonExecutor()
    asyncio.get_running_loop().set_default_executor(_EXECUTOR)
