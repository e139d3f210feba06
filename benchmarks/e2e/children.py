"""The service's processes as the benchmarks run them: the real loops, with stage meters around them.

    python -m benchmarks.e2e.children worker|poller|sender
    python -m benchmarks.e2e.children reader DB URLS_FILE

Each child builds the service's own `Runtime` from the environment and runs the loop that
`ingest worker`, `ingest poll` and `ingest send` run (the same functions, the same stop
handling). The meters wrap module attributes the service looks up at call time, in the
child only; the service's code is unchanged. Each child adds its pid to READY_KEY once
loaded; the poller waits for GO_KEY so that start-up CPU stays out of the figures.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from benchmarks.e2e.common import GO_KEY, READY_KEY, ROOT, vmhwm
from benchmarks.e2e.meter import StageMeter, maybe_profiled


def child_worker() -> None:
    """`ingest worker`: RQ SimpleWorker on the ingest queue, meters around the pipeline's steps."""
    import ingest.alert.wakeup
    import ingest.language.detect
    import ingest.services.prepare
    import ingest.services.process
    import workers.jobs
    from app.runtime import Runtime
    from ingest.settings import Settings
    from workers.stop import Stop
    from workers.worker import run_worker

    settings = Settings.from_env()
    meter = StageMeter(settings.redis_url, "worker")
    meter.patch(ingest.services.prepare, "clean_document", "clean")
    meter.patch(ingest.language.detect.LanguageDetector, "detect", "language")
    ingest.services.process._Timer = meter.timer_class()  # type: ignore[misc]
    meter.patch(ingest.services.process.Pipeline, "_split_known", "known")
    meter.patch(ingest.alert.wakeup.RedisWakeup, "wake", "wake")
    meter.patch(workers.jobs, "process_batch", "job_process")
    stop = Stop()
    stop.install()
    rt = Runtime(settings)
    workers.jobs.bind(lambda: rt.batch_runner)
    rt.pipeline.subscriptions.current()  # a long-running worker has its matcher warm
    rt.redis.sadd(READY_KEY, os.getpid())
    with maybe_profiled("worker"):
        run_worker(rt.batch_queue.queue, prefix=settings.redis_prefix, stop=stop)
    rt.close()


def child_poller() -> None:
    """`ingest poll`'s loop, meters around parse, queue and state recording."""
    import app.poller as poller
    import ingest.services.intake
    import ingest.services.refresh
    from app.runtime import Runtime
    from ingest.settings import Settings
    from workers.stop import Stop

    settings = Settings.from_env()
    meter = StageMeter(settings.redis_url, "poller")
    meter.patch(ingest.services.refresh, "parse_feed", "parse")
    meter.patch(ingest.services.intake.Intake, "accept", "queue")
    meter.patch(ingest.services.refresh.Refresher, "_record_success", "record")
    stop = Stop()
    stop.install()
    rt = Runtime(settings)
    rt.store.list_feeds()
    rt.redis.sadd(READY_KEY, os.getpid())
    while not rt.redis.exists(GO_KEY) and not stop.event.is_set():
        time.sleep(0.02)
    with maybe_profiled("poller"):
        poller.run_poller(rt, stop.event, tick=0.2)
    rt.close()


def child_sender() -> None:
    """`ingest send`: the delivery loop (its whole process CPU is the sender's cost)."""
    from app.runtime import Runtime
    from app.sender import run_sender
    from ingest.settings import Settings
    from workers.stop import Stop

    stop = Stop()
    stop.install()
    rt = Runtime(Settings.from_env())
    rt.store.get_receivers()
    rt.redis.sadd(READY_KEY, os.getpid())
    with maybe_profiled("sender"):
        run_sender(rt, stop.event)
    rt.close()


def child_reader(db: str, urls_file: str, workers: int) -> None:
    """reader on the farm: add the feeds, one update_feeds(workers=N); prints JSON figures."""
    import logging

    from reader import make_reader

    logging.disable(logging.WARNING)
    lib = make_reader(db)
    for url in Path(urls_file).read_text().split():
        lib.add_feed(url)
    started, cpu = time.perf_counter(), time.process_time()
    lib.update_feeds(workers=workers)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    entries = lib.get_entry_counts().total
    lib.close()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "entries": entries, "rss_mib": vmhwm(os.getpid())}))


def command(role: str, *args: str) -> list[str]:
    """The command line that runs `role` in a child process."""
    return [sys.executable, "-m", "benchmarks.e2e.children", role, *args]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    role = argv[0]
    if role == "reader":
        child_reader(argv[1], argv[2], 4)
    else:
        {"worker": child_worker, "poller": child_poller, "sender": child_sender}[role]()
    threading.Event().wait(0.3)  # the meters' last flush (every 0.2 s)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
