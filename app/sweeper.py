"""The sweeper: the database is the record, the queue is rebuilt from it.

RQ runs an abandoned job at most once, and Redis can lose its last second of
writes (or everything, if flushed). An outbox alert that is still pending past
its due time (plus INGEST_SWEEP_GRACE) and has no live job for its current
attempt is queued again. A job counts as live while it is queued, scheduled
or deferred, or started with its alert's delivery lock held: a worker killed
mid-delivery leaves a `started` job behind, but its lock expires
INGEST_WEBHOOK_TIMEOUT + 10 s later. The sweeper also closes digest windows.
Re-queueing may send an alert twice; the receiver deduplicates by webhook-id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from app.runtime import Context
from ingest.alert.digest import cut_digests
from ingest.errors import NotFound
from ingest.log import get_logger
from ingest.models import Alert, utcnow
from workers.jobs import enqueue_alerts
from workers.queues import alert_job_id

log = get_logger(__name__)

WAITING = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def sweep(ctx: Context, *, grace: float | None = None) -> int:
    """Cut due digests, then re-queue overdue pending alerts whose job is gone; returns how many."""
    grace = ctx.settings.sweep_grace if grace is None else grace
    cut = cut_digests(ctx.store)
    enqueue_alerts(ctx, cut.digests + cut.released)
    due = ctx.store.pending_alerts(utcnow() - timedelta(seconds=grace))
    paused = _paused(ctx, {a.subscription_id for a in due})
    requeued = requeue(ctx, [a for a in due if a.subscription_id not in paused])
    if requeued:
        log.warning("alerts_requeued", count=len(requeued), alert_ids=[a.id for a in requeued[:20]])
    return len(requeued)


def requeue(ctx: Context, alerts: Sequence[Alert]) -> list[Alert]:
    """Queue each alert's current attempt unless a live job has it; returns the alerts queued."""
    queued: set[str] | None = None

    def in_queue(job_id: str) -> bool:
        nonlocal queued
        if queued is None:  # one read of the queue per sweep, and only when a job claims to be queued
            queued = set(ctx.queues[1].get_job_ids())
        return job_id in queued

    lost = [a for a in alerts if not _alive(ctx, a, in_queue)]
    enqueue_alerts(ctx, lost)
    return lost


def _paused(ctx: Context, sub_ids: set[str]) -> set[str]:
    """The paused ones among `sub_ids`: their alerts wait for `ingest subs resume`."""
    paused = set()
    for sub_id in sub_ids:
        try:
            if ctx.store.get_subscription(sub_id).status == "paused":
                paused.add(sub_id)
        except NotFound:
            continue
    return paused


def _alive(ctx: Context, alert: Alert, in_queue: Callable[[str], bool]) -> bool:
    """Whether the attempt's job will still run; a dead one is deleted so its id can be reused.

    A job whose hash says `queued` but that is not in the queue was taken by a worker that lost
    Redis (or died) before marking it started: nobody will run it.
    """
    job_id = alert_job_id(alert.id, alert.attempts)
    try:
        job = Job.fetch(job_id, connection=ctx.redis, serializer=ctx.queues[1].serializer)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED and in_queue(job_id):
        return True
    if status in WAITING - {JobStatus.QUEUED}:
        return True
    if status == JobStatus.STARTED and ctx.redis.exists(f"{ctx.settings.redis_prefix}alert-lock:{alert.id}"):
        return True  # a worker is sending it now
    job.delete()
    return False
