"""The RQ side of the batch queue: job ids, enqueueing, and telling a lost job from a slow one.

`RQBatchQueue` is the `BatchQueue` port (ingest/services/ports.py) over one RQ queue. The
database row is the batch's record; the job carries only its id (`process_batch(batch_id)`).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from ingest.metrics import QueueStat
from ingest.models import PendingBatch

INGEST = "ingest"
# Seconds a finished job stays in Redis: nothing reads results (the database is the record), so
# this only keeps recent successes visible in rq-dashboard. Failures stay FAILURE_TTL.
RESULT_TTL = 60
FAILURE_TTL = 7 * 24 * 3600
HEARTBEAT_EVERY = 2.0  # seconds between two worker heartbeats
HEARTBEAT_TTL = 10  # a worker silent this long is dead (or frozen)
WAITING = {JobStatus.SCHEDULED, JobStatus.DEFERRED}
JOB = "workers.jobs.process_batch"


def queue_name(prefix: str = "") -> str:
    """The ingest queue's name under an optional deployment prefix (INGEST_QUEUE_PREFIX)."""
    return f"{prefix}{INGEST}"


def batch_job_id(batch: PendingBatch) -> str:
    """One job id per (batch, attempt): recovery can tell which attempt a job belongs to."""
    return f"batch-{batch.id}-{batch.attempts}"


def heartbeat_key(prefix: str, worker_name: str) -> str:
    return f"{prefix}worker-alive:{worker_name}"


class RQBatchQueue:
    """Batches as RQ jobs on the `ingest` queue."""

    def __init__(self, client: redis.Redis, *, prefix: str, queue_prefix: str, job_timeout: int) -> None:
        self.client = client
        self.prefix = prefix
        self.job_timeout = job_timeout
        self.queue = Queue(queue_name(queue_prefix), connection=client, serializer=JSONSerializer)

    def enqueue(self, batches: Sequence[PendingBatch]) -> None:
        """One `process_batch(batch_id)` job per batch, all in one round trip."""
        if not batches:
            return
        datas = [Queue.prepare_data(JOB, args=(b.id,), job_id=batch_job_id(b), timeout=self.job_timeout,
                                    result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
                 for b in batches]  # fmt: skip
        with self.client.pipeline() as pipe:
            self.queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()

    def why_lost(self, batch: PendingBatch) -> str | None:
        """Why the batch's current job will never finish it, or None while it still may."""
        job_id = batch_job_id(batch)
        try:
            job = Job.fetch(job_id, connection=self.client, serializer=self.queue.serializer)
        except NoSuchJobError:
            return f"job {job_id} is gone from Redis"
        status = job.get_status(refresh=False)
        if status == JobStatus.QUEUED:
            return None if job_id in self.queue.get_job_ids() else f"job {job_id} is missing from the queue"
        if status in WAITING:
            return None
        if status == JobStatus.STARTED:
            name = job.worker_name
            if name and self.client.exists(heartbeat_key(self.prefix, name)):
                return None
            return f"worker {name or '?'} of job {job_id} stopped sending heartbeats"
        return f"job {job_id} ended as {status.value if status else 'unknown'} with the batch unfinished"

    def stats(self) -> list[QueueStat]:
        """Depth of the queue and its registries, and its live workers, read now."""
        q = self.queue
        return [QueueStat(queue=q.name, queued=q.count, started=q.started_job_registry.count,
                          scheduled=q.scheduled_job_registry.count, deferred=q.deferred_job_registry.count,
                          failed=q.failed_job_registry.count, workers=Worker.count(queue=q))]  # fmt: skip
