"""The RQ worker class: fewer Redis round trips per job, same RQ semantics."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from rq import Queue, get_current_job
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.suspension import resume, suspend

from workers import worker as worker_module
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


def record(n: int) -> int:
    """A job that appends its number to a list in Redis: the order jobs ran in."""
    job = get_current_job()
    assert job is not None and job.connection is not None
    job.connection.rpush("ran", n)
    return n


def record_and_stop(n: int) -> int:
    """`record`, then a SIGTERM to this process: RQ's warm shutdown (finish this job, then stop)."""
    os.kill(os.getpid(), signal.SIGTERM)
    return record(n)


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


def _grouped(connection: redis.Redis, name: str) -> tuple[IngestWorker, Queue]:
    """A worker on two queues whose second one (`name`) is taken in groups, as the alerts queue is."""
    queue = Queue(name, connection=connection, serializer=JSONSerializer)
    other = Queue(f"{name}-other", connection=connection, serializer=JSONSerializer)
    worker = IngestWorker([other, queue], connection=connection, serializer=JSONSerializer)
    worker.grouped = frozenset({name})
    connection.delete("ran")
    return worker, queue


def _enqueue(queue: Queue, func: Any, count: int) -> list[str]:
    with queue.connection.pipeline() as pipe:
        jobs = queue.enqueue_many(
            [Queue.prepare_data(func, args=(i,), result_ttl=60) for i in range(count)], pipeline=pipe
        )
        pipe.execute()
    return [job.id for job in jobs]


def _ran(connection: redis.Redis) -> list[int]:
    return [int(x) for x in connection.lrange("ran", 0, -1)]


def test_grouped_queue_jobs_run_in_order_with_fewer_round_trips(redis_url: str) -> None:
    """A grouped queue's jobs: taken GROUP_MAX at a time, started one by one, finished together;
    each still ends FINISHED, with its result, in RQ's finished registry."""
    connection = CountingRedis.from_url(redis_url)
    worker, queue = _grouped(connection, "grouped-rt")
    ids = _enqueue(queue, record, 200)
    CountingRedis.round_trips = 0
    worker.work(burst=True, logging_level="WARNING")
    per_job = (CountingRedis.round_trips - 200) / 200  # minus each job's own RPUSH
    assert per_job <= 1.6, f"{per_job:.2f} round trips per job"
    assert _ran(connection) == list(range(200))
    finished = set(FinishedJobRegistry(queue=queue).get_job_ids())
    for n, job_id in enumerate(ids):
        job = queue.fetch_job(job_id)
        assert job is not None and job.get_status() == JobStatus.FINISHED and job.return_value() == n
        assert job_id in finished
    assert not StartedJobRegistry(queue=queue).get_job_ids()
    connection.close()


def test_group_gives_back_what_it_did_not_start_in_time(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past GROUP_SECONDS no more of the group starts: the rest go back to the queue's head, in order."""
    monkeypatch.setattr(worker_module, "GROUP_SECONDS", 0.0)
    worker, queue = _grouped(redis_client, "grouped-late")
    _enqueue(queue, record, 40)
    worker.work(burst=True, max_jobs=1, logging_level="WARNING")
    assert _ran(redis_client) == [0]
    assert queue.get_job_ids() == [job.id for job in queue.get_jobs()]  # readable, still queued
    assert [job.args[0] for job in queue.get_jobs()] == list(range(1, 40))
    assert all(job.get_status() == JobStatus.QUEUED for job in queue.get_jobs())
    worker.work(burst=True, logging_level="WARNING")
    assert _ran(redis_client) == list(range(40))


def test_group_stops_on_warm_shutdown_and_gives_back_the_rest(redis_client: redis.Redis) -> None:
    """A stop request during a group: the running job finishes, the others wait in the queue."""
    worker, queue = _grouped(redis_client, "grouped-stop")
    first = queue.enqueue(record_and_stop, 0, result_ttl=60)
    rest = _enqueue(queue, record, 5)
    worker.work(burst=True, logging_level="WARNING")
    assert _ran(redis_client) == [0]
    assert first.get_status(refresh=True) == JobStatus.FINISHED
    assert queue.get_job_ids() == rest
    assert not StartedJobRegistry(queue=queue).get_job_ids()


def test_group_skips_a_job_whose_hash_is_gone(redis_client: redis.Redis) -> None:
    """As RQ's own dequeue does: an id left in the queue after its job was deleted is dropped."""
    worker, queue = _grouped(redis_client, "grouped-gone")
    ids = _enqueue(queue, record, 5)
    redis_client.delete(f"rq:job:{ids[2]}")
    worker.work(burst=True, logging_level="WARNING")
    assert _ran(redis_client) == [0, 1, 3, 4]
    assert queue.count == 0
