"""The RQ worker: one process, no fork per job, models loaded before the first job."""

from __future__ import annotations

from rq import SimpleWorker

from ingest.log import get_logger
from workers.context import Context

log = get_logger(__name__)


def run_worker(ctx: Context, *, burst: bool = False, with_scheduler: bool = True) -> bool:
    """Work the ingest and alerts queues; returns whether any job ran.

    SimpleWorker runs jobs in this process: forking per job would re-pay the
    language models' page faults and lose the warm matcher. SIGTERM makes RQ
    finish the current job and stop (warm shutdown).
    """
    ctx.pipeline  # noqa: B018 - load models now, not inside the first job's timeout
    queues = list(ctx.queues)
    worker = SimpleWorker(queues, connection=ctx.redis, serializer=queues[0].serializer)
    log.info("worker_started", queues=[q.name for q in queues], burst=burst, name=worker.name)
    return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="WARNING")
