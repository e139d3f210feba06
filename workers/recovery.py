"""Recovery: rebuild the ingest queue from the database after Redis lost jobs or a worker died.

The poller writes every batch of accepted entries to `pending_batches` in the
transaction that marks them seen, then queues job `batch-<id>-<attempt>`; the
worker deletes the row once the pipeline committed. So a pending row whose job
cannot run any more is a batch that would otherwise be lost. Every sweep
(`INGEST_SWEEP_INTERVAL`), batches queued more than `INGEST_RECOVERY_AFTER`
seconds ago are checked; one is queued again (next attempt) when its job is:

- gone (Redis flushed, restarted without its last second of AOF, or lost),
- queued in name but missing from the queue list,
- finished, failed (an exception or RQ's job timeout), stopped or cancelled
  while the row is still pending,
- started by a worker whose heartbeat (`<prefix>worker-alive:<name>`, renewed
  every HEARTBEAT_EVERY s with a HEARTBEAT_TTL s expiry by `ingest worker`) has
  expired: the worker was killed or is frozen. RQ itself would only notice
  after the job's timeout plus a minute (11 minutes by default).

After `INGEST_BATCH_MAX_ATTEMPTS` queueings a batch is marked `failed` and kept.
Running a batch twice is harmless: the pipeline stores nothing twice and alerts
nobody twice; a retried batch is matched again (`rematch`) so a worker killed
between storing articles and writing their alerts loses no alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from app.runtime import Context
from ingest.log import get_logger
from ingest.models import Alert, Article, PendingBatch, RawEntry, utcnow

log = get_logger(__name__)

HEARTBEAT_EVERY = 2.0  # seconds between two worker heartbeats
HEARTBEAT_TTL = 10  # seconds a heartbeat lasts: a worker silent this long is dead (or frozen)
WAITING = {JobStatus.SCHEDULED, JobStatus.DEFERRED}


def batch_job_id(batch: PendingBatch) -> str:
    """One job id per (batch, attempt): the sweeper can tell which attempt a job belongs to."""
    return f"batch-{batch.id}-{batch.attempts}"


def heartbeat_key(prefix: str, worker_name: str) -> str:
    return f"{prefix}worker-alive:{worker_name}"


def enqueue_batches(ctx: Context, batches: Sequence[PendingBatch]) -> list[str]:
    """Queue one `process_batch(batch_id)` job per batch in one round trip; the job ids."""
    from rq import Queue

    from workers.jobs import process_batch
    from workers.queues import FAILURE_TTL, RESULT_TTL

    if not batches:
        return []
    queue = ctx.queues[0]
    datas = [
        Queue.prepare_data(
            process_batch,
            args=(b.id,),
            job_id=batch_job_id(b),
            timeout=ctx.settings.job_timeout,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )
        for b in batches
    ]
    with ctx.redis.pipeline() as pipe:
        jobs = queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()
    return [job.id for job in jobs]


def recover(ctx: Context, *, after: float | None = None, now: datetime | None = None) -> int:
    """Queue again the stale pending batches whose job will not run; returns how many were queued."""
    after = ctx.settings.recovery_after if after is None else after
    stale = ctx.store.stale_batches((now or utcnow()) - timedelta(seconds=after))
    if not stale:
        return 0
    queued = {job_id for job_id in ctx.queues[0].get_job_ids()}
    requeued: list[PendingBatch] = []
    for batch in stale:
        why = _why_lost(ctx, batch, queued)
        if why is None:
            continue
        bound = log.bind(batch_id=batch.id, feed_id=batch.feed_id, attempts=batch.attempts, reason=why)
        if batch.attempts >= ctx.settings.batch_max_attempts:
            ctx.store.fail_batch(batch.id, f"gave up after {batch.attempts} attempts; last: {why}")
            bound.error("batch_failed")
            continue
        again = ctx.store.requeue_batch(batch.id, error=why)
        if again is not None:
            requeued.append(again)
            bound.warning("batch_requeued", job_id=batch_job_id(again))
    enqueue_batches(ctx, requeued)
    return len(requeued)


def _why_lost(ctx: Context, batch: PendingBatch, queued: set[str]) -> str | None:
    """Why the batch's current job will never finish it, or None while it still may."""
    job_id = batch_job_id(batch)
    try:
        job = Job.fetch(job_id, connection=ctx.redis, serializer=ctx.queues[0].serializer)
    except NoSuchJobError:
        return f"job {job_id} is gone from Redis"
    status = job.get_status(refresh=False)
    if status == JobStatus.QUEUED:
        return None if job_id in queued else f"job {job_id} is missing from the queue"
    if status in WAITING:
        return None
    if status == JobStatus.STARTED:
        if job.worker_name and ctx.redis.exists(heartbeat_key(ctx.settings.redis_prefix, job.worker_name)):
            return None
        return f"worker {job.worker_name or '?'} of job {job_id} stopped sending heartbeats"
    return f"job {job_id} ended as {status.value if status else 'unknown'} with the batch unfinished"


def rematch(ctx: Context, raws: Sequence[RawEntry], *, since: datetime | None) -> list[Alert]:
    """Alerts of a retried batch's articles stored by an earlier attempt (stored at or after `since`).

    A worker killed between storing articles and writing their alerts left articles the pipeline
    now reports as unchanged; matching them again writes the missing outbox rows. Alert ids are
    per (subscription, story), so alerts written before are not written (or sent) again.
    """
    articles: list[Article] = []
    for raw in raws:
        article = ctx.store.get_article_by_entry(raw.feed_id, raw.entry_key)
        if article is not None and not article.updated and (since is None or article.fetched_at >= since):
            articles.append(article)
    candidates = ctx.pipeline._match(articles) if articles else []
    alerts = ctx.store.add_alerts(candidates) if candidates else []
    if alerts:
        log.warning("batch_rematched", alerts=len(alerts), alert_ids=[a.id for a in alerts[:20]])
    return alerts


def publish_heartbeat(client: redis.Redis, prefix: str, worker_name: str) -> None:
    """One heartbeat of a live worker (a failure is logged; the next one retries)."""
    try:
        client.set(heartbeat_key(prefix, worker_name), "1", ex=HEARTBEAT_TTL)
    except redis.RedisError as exc:
        log.warning("worker_heartbeat_failed", worker=worker_name, error=str(exc))
