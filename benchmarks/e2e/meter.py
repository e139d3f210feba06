"""Instrumentation inside the service's processes (benchmark only): CPU per stage, profiles."""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.e2e.common import STAGES_KEY


class StageMeter:
    """Thread CPU seconds per named stage, summed across processes into one Redis hash.

    Wrapping is done in the benchmark's child processes only (module attributes the service looks
    up at call time); the service's code is unchanged. A thread flushes the sums every 0.2 s.
    """

    def __init__(self, redis_url: str, role: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url)
        self._role = role
        self._lock = threading.Lock()
        self._pending: dict[str, float] = defaultdict(float)
        threading.Thread(target=self._flush_forever, daemon=True).start()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self._pending[f"{self._role}:{name}:cpu"] += seconds
            self._pending[f"{self._role}:{name}:calls"] += 1

    def patch(self, owner: Any, attr: str, name: str) -> None:
        """Replace `owner.attr` by its metered self; a missing attribute (renamed since) is skipped."""
        if hasattr(owner, attr):
            setattr(owner, attr, self.wrap(name, getattr(owner, attr)))
        else:
            print(f"bench: {owner.__name__}.{attr} is gone; stage {name!r} not measured", file=sys.stderr)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.thread_time() - start)

        return timed

    def timer_class(self) -> type:
        """A stand-in for ingest.services.process._Timer that also records thread CPU per stage."""
        meter = self

        class CpuTimer:
            def __init__(self, into: dict[str, float]) -> None:
                self._into = into

            def __call__(self, name: str) -> CpuTimer:
                self._name = name
                return self

            def __enter__(self) -> None:
                self._start, self._cpu = time.perf_counter(), time.thread_time()

            def __exit__(self, *exc: object) -> None:
                self._into[self._name] = self._into.get(self._name, 0.0) + time.perf_counter() - self._start
                meter.add(self._name, time.thread_time() - self._cpu)

        return CpuTimer

    def _flush_forever(self) -> None:
        while True:
            time.sleep(0.2)
            with self._lock:
                pending, self._pending = self._pending, defaultdict(float)
            if pending:
                with self._redis.pipeline(transaction=False) as pipe:
                    for field, value in pending.items():
                        pipe.hincrbyfloat(STAGES_KEY, field, value)
                    pipe.execute()


@contextmanager
def maybe_profiled(role: str) -> Iterator[None]:
    """With BENCH_PROFILE_DIR set, a pyinstrument profile of this child, written when it stops;
    with BENCH_CPROFILE_DIR set, a cProfile dump instead (`python -m pstats` reads it)."""
    folder = os.environ.get("BENCH_PROFILE_DIR")
    cfolder = os.environ.get("BENCH_CPROFILE_DIR")
    if cfolder and role in os.environ.get("BENCH_CPROFILE_ROLES", role).split(","):
        with cprofiled(Path(cfolder) / f"{role}-{os.getpid()}.pstats"):
            yield
        return
    if not folder:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        Path(folder).mkdir(parents=True, exist_ok=True)
        out = Path(folder) / f"{role}-{os.getpid()}.txt"
        out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))


@contextmanager
def cprofiled(out: Path) -> Iterator[None]:
    """cProfile of this thread and of every `asyncio.to_thread` call (each pool thread its own profiler,
    merged at the end; thread CPU time, not wall time): the sender claims and records in threads."""
    import asyncio
    import cProfile
    import pstats

    profilers: list[cProfile.Profile] = []
    local = threading.local()
    original = asyncio.to_thread

    def run_profiled(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not hasattr(local, "profiler"):
            local.profiler = cProfile.Profile(time.thread_time)
            profilers.append(local.profiler)
        local.profiler.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            local.profiler.disable()

    async def to_thread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return await original(run_profiled, fn, *args, **kwargs)

    asyncio.to_thread = to_thread  # type: ignore[assignment]
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        yield
    finally:
        main.disable()
        out.parent.mkdir(parents=True, exist_ok=True)
        stats = pstats.Stats(main)
        for profiler in profilers:
            stats.add(profiler)
        stats.dump_stats(str(out))
