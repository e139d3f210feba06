"""The RQ worker: one process, no fork per job, models loaded before the first job."""

from __future__ import annotations

import contextlib
import gc
import threading
import time

import redis
from rq import Queue, SimpleWorker

from ingest.log import get_logger
from workers.context import Context
from workers.recovery import HEARTBEAT_EVERY, heartbeat_key, publish_heartbeat

log = get_logger(__name__)

RECONNECT_PAUSE = 2.0  # seconds before a worker that lost Redis starts over


def run_worker(ctx: Context, *, burst: bool = False, with_scheduler: bool = True) -> bool:
    """Work the ingest and alerts queues; returns whether any job ran.

    SimpleWorker runs jobs in this process: forking per job would re-pay the
    language models' page faults and lose the warm matcher. SIGTERM makes RQ
    finish the current job and stop (warm shutdown); a second SIGTERM stops
    at once (the batch is then queued again by `workers.recovery`). A thread
    publishes a heartbeat every HEARTBEAT_EVERY s, so the recovery sweeper
    can tell a dead worker's started job from a slow one. If Redis goes away
    the worker starts over with a new RQ worker once it answers again.
    """
    ctx.pipeline  # noqa: B018 - load models now, not inside the first job's timeout
    gc.collect()
    gc.freeze()  # the loaded models are long-lived: keep them out of every later collection
    queues = list(ctx.queues)
    while True:
        try:
            return _work(ctx, queues, burst=burst, with_scheduler=with_scheduler)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.error("worker_lost_redis", error=str(exc), retry_in=RECONNECT_PAUSE)
            time.sleep(RECONNECT_PAUSE)


def _work(ctx: Context, queues: list[Queue], *, burst: bool, with_scheduler: bool) -> bool:
    """One RQ worker's life, with its heartbeat thread."""
    worker = SimpleWorker(queues, connection=ctx.redis, serializer=queues[0].serializer)
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(ctx, worker.name, stop), daemon=True, name="worker-heartbeat")
    beat.start()
    log.info("worker_started", queues=[q.name for q in queues], burst=burst, name=worker.name)
    try:
        return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="WARNING")
    finally:
        stop.set()
        beat.join(timeout=HEARTBEAT_EVERY + 1)
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            ctx.redis.delete(heartbeat_key(ctx.settings.redis_prefix, worker.name))


def _beat(ctx: Context, name: str, stop: threading.Event) -> None:
    """Publish the worker's heartbeat until `stop` is set (a daemon thread: it dies with the process)."""
    while not stop.is_set():
        publish_heartbeat(ctx.redis, ctx.settings.redis_prefix, name)
        stop.wait(HEARTBEAT_EVERY)
