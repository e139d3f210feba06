"""The sweeper: the database is the record, the queue is rebuilt from it.

RQ runs an abandoned job at most once, and Redis can lose its last second of
writes. An outbox alert that is still pending past its due time and has no
queued job for its current attempt is queued again.
"""

from __future__ import annotations

from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from ingest.log import get_logger
from ingest.models import utcnow
from workers.context import Context
from workers.jobs import enqueue_alerts
from workers.queues import alert_job_id

log = get_logger(__name__)

GRACE_SECONDS = 30  # leave a just-due attempt to the scheduler that planned it
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def sweep(ctx: Context, *, grace: float = GRACE_SECONDS) -> int:
    """Re-queue overdue pending alerts whose job is gone; returns how many."""
    due = ctx.store.pending_alerts(utcnow() - timedelta(seconds=grace))
    lost = [a for a in due if not _alive(ctx, alert_job_id(a.id, a.attempts))]
    if lost:
        enqueue_alerts(ctx, lost)
        log.warning("alerts_requeued", count=len(lost), alert_ids=[a.id for a in lost[:20]])
    return len(lost)


def _alive(ctx: Context, job_id: str) -> bool:
    """Whether the attempt's job will still run; a dead one is deleted so its id can be reused."""
    try:
        job = Job.fetch(job_id, connection=ctx.redis, serializer=ctx.queues[1].serializer)
    except NoSuchJobError:
        return False
    if job.get_status(refresh=False) in LIVE:
        return True
    job.delete()
    return False
