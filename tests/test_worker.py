"""The RQ worker class: fewer Redis round trips per job, same RQ semantics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq import Queue, get_current_job
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend

from workers.worker import IngestWorker


def worker_key_ttl() -> int:
    """A job that reports how long its worker's key has left to live."""
    job = get_current_job()
    assert job is not None and job.connection is not None
    return int(job.connection.ttl(f"rq:worker:{job.worker_name}"))


def started_registry_ids() -> list[str]:
    """A job that lists the started registry of its own queue, from inside."""
    job = get_current_job()
    assert job is not None
    return StartedJobRegistry(job.origin, connection=job.connection).get_job_ids()


def double(x: int) -> int:
    return 2 * x


def explode() -> None:
    raise ValueError("boom on purpose")


class CountingRedis(redis.Redis):
    """Counts round trips: single commands and pipeline executions."""

    round_trips = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        type(self).round_trips += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def counted(*a: Any, **k: Any) -> Any:
            type(self).round_trips += 1
            return execute(*a, **k)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe


@pytest.fixture()
def queue(redis_client: redis.Redis) -> Iterator[Queue]:
    yield Queue("worker-test", connection=redis_client, serializer=JSONSerializer)


def _worker(queue: Queue) -> IngestWorker:
    return IngestWorker([queue], connection=queue.connection, serializer=JSONSerializer)


def test_jobs_run_and_land_in_rq_registries(queue: Queue) -> None:
    ok = queue.enqueue(double, 21, result_ttl=60)
    bad = queue.enqueue(explode, failure_ttl=60)
    assert _worker(queue).work(burst=True, logging_level="WARNING")
    ok.refresh()
    bad.refresh()
    assert ok.get_status() == JobStatus.FINISHED and ok.return_value() == 42
    assert ok.id in FinishedJobRegistry(queue=queue).get_job_ids()
    assert bad.get_status() == JobStatus.FAILED
    assert bad.id in FailedJobRegistry(queue=queue).get_job_ids()
    assert "boom on purpose" in (bad.latest_result().exc_string or "")  # type: ignore[union-attr]
    assert ok.ended_at is not None and ok.last_heartbeat is not None


def test_worker_key_keeps_rqs_ttl_between_jobs(queue: Queue) -> None:
    """The key dashboards list workers by never gets a TTL shorter than RQ's worker TTL."""
    jobs = [queue.enqueue(worker_key_ttl, job_timeout=5, result_ttl=60) for _ in range(3)]
    worker = _worker(queue)
    worker.work(burst=True, logging_level="WARNING")
    for job in jobs:
        job.refresh()
        assert job.return_value() >= worker.worker_ttl


def test_suspended_workers_do_not_take_jobs(queue: Queue) -> None:
    job = queue.enqueue(double, 1)
    suspend(queue.connection)
    try:
        assert not _worker(queue).work(burst=True, logging_level="WARNING")
        assert job.get_status(refresh=True) == JobStatus.QUEUED
    finally:
        resume(queue.connection)
    assert _worker(queue).work(burst=True, logging_level="WARNING")
    assert job.get_status(refresh=True) == JobStatus.FINISHED


def test_round_trips_per_job(redis_url: str) -> None:
    """RQ's own SimpleWorker needs 18 round trips per job; ours 4 (take, read, start, finish)."""
    connection = CountingRedis.from_url(redis_url)
    queue = Queue("worker-rt", connection=connection, serializer=JSONSerializer)
    count = 200  # the worker's start and stop (registration, cleanup) spread thin
    with connection.pipeline() as pipe:
        queue.enqueue_many(
            [Queue.prepare_data(double, args=(i,), result_ttl=60) for i in range(count)], pipeline=pipe
        )
        pipe.execute()
    CountingRedis.round_trips = 0
    _worker(queue).work(burst=True, logging_level="WARNING")
    per_job = CountingRedis.round_trips / count
    assert per_job <= 4.2, f"{per_job:.1f} round trips per job"
    connection.close()


def test_dependents_still_run_after_their_dependency(queue: Queue) -> None:
    """Success skips RQ's watch of the dependents but still queues them when there are any."""
    first = queue.enqueue(double, 2, result_ttl=60)
    second = queue.enqueue(double, 3, depends_on=first, result_ttl=60)
    assert second.get_status(refresh=True) == JobStatus.DEFERRED
    _worker(queue).work(burst=True, logging_level="WARNING")
    assert first.get_status(refresh=True) == JobStatus.FINISHED
    assert second.get_status(refresh=True) == JobStatus.FINISHED and second.return_value() == 6


def test_started_jobs_are_visible_to_dashboards_while_running(queue: Queue) -> None:
    """The execution record and the started registry are written before the job body runs."""
    job = queue.enqueue(started_registry_ids, result_ttl=60)
    _worker(queue).work(burst=True, logging_level="WARNING")
    job.refresh()
    assert job.id in job.return_value()
    assert job.id not in StartedJobRegistry(queue=queue).get_job_ids()
