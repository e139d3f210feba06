"""The RQ worker: one process, no fork per job, models loaded before the first job."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from types import FrameType

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.rate_limit import release_slot
from rq.registry import StartedJobRegistry
from rq.utils import now
from rq.worker import WorkerStatus

from ingest.log import get_logger
from workers.queues import HEARTBEAT_EVERY, HEARTBEAT_TTL, heartbeat_key
from workers.stop import Stop

log = get_logger(__name__)

RECONNECT_PAUSE = 2.0  # seconds before a worker that lost Redis starts over
BEAT_EVERY = 5.0  # seconds between RQ worker heartbeats sent on their own (not in a job's pipeline)
SUSPENSION_CHECK_EVERY = 1.0  # seconds between `rq suspend` checks


class IngestWorker(SimpleWorker):
    """RQ's SimpleWorker with its per-job bookkeeping cut from 18 Redis round trips to 4:
    take the job, read it, one transaction to start it, one to finish it.

    RQ sends the worker heartbeat (3 commands, one at a time) twice per job, checks for
    `rq suspend` once per job, and writes the job's heartbeat and the idle state one extra time
    each. At hundreds of jobs per second that is most of a job's cost. Here heartbeats sent on
    their own go in one pipeline at most every BEAT_EVERY s (the worker key never gets a TTL
    shorter than RQ's own, so it outlives the longest dequeue wait), the suspension check runs at
    most every SUSPENSION_CHECK_EVERY s, and unchanged state writes and the job-heartbeat write
    after the job ran are skipped (on success RQ saves the job hash with that field moments later;
    a failed job keeps the heartbeat written when it started). The execution record is written
    in the job's start transaction, and success is one transaction that also reads the job's
    dependents (none, unless someone queues with `depends_on`) and sets the worker idle, where
    RQ watches and reads the dependents first.
    """

    stop_flag: Stop | None = None  # the process's stop request, set by RQ's signal handler too
    _beat_sent_at = 0.0
    _suspension_checked_at = 0.0
    _start: redis.client.Pipeline | None = None

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """RQ's warm shutdown, which writes to Redis: with Redis down, stop without the write."""
        if self.stop_flag is not None:
            self.stop_flag.request(signum)
        try:
            super().request_stop(signum, frame)  # type: ignore[no-untyped-call]
        except (redis.ConnectionError, redis.TimeoutError):
            raise StopRequested() from None

    def heartbeat(self, timeout: int | None = None, pipeline: redis.client.Pipeline | None = None) -> None:
        ttl = max(timeout or 0, self.worker_ttl + 60)
        if pipeline is not None:
            super().heartbeat(ttl, pipeline=pipeline)
            return
        clock = time.monotonic()
        if clock - self._beat_sent_at < BEAT_EVERY:
            return
        self._beat_sent_at = clock
        with self.connection.pipeline(transaction=False) as pipe:
            super().heartbeat(ttl, pipeline=pipe)
            pipe.execute()

    def check_for_suspension(self, burst: bool) -> None:
        clock = time.monotonic()
        if clock - self._suspension_checked_at >= SUSPENSION_CHECK_EVERY:
            self._suspension_checked_at = clock
            super().check_for_suspension(burst)

    def set_state(self, state: str, pipeline: redis.client.Pipeline | None = None) -> None:
        if pipeline is None and state == self._state:
            return
        super().set_state(state, pipeline=pipeline)

    def handle_execution_ended(self, job: Job, queue: Queue, heartbeat_ttl: int) -> None:
        job.ended_at = job.last_heartbeat = now()  # RQ saves both with a success (not with a failure)

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's, with its writes left for prepare_job_execution's transaction (one round trip)."""
        pipe = self.connection.pipeline()
        execution = Execution.create(job, self.get_heartbeat_ttl(job), pipeline=pipe, worker_name=self.name)
        self.executions[execution.id] = execution
        self.set_state(WorkerStatus.BUSY, pipeline=pipe)
        self._start = pipe
        return execution

    def prepare_job_execution(self, job: Job, remove_from_intermediate_queue: bool = False) -> None:
        pipeline, self._start = self._start or self.connection.pipeline(), None
        with pipeline:
            ttl = self.get_heartbeat_ttl(job)
            self.heartbeat(ttl, pipeline=pipeline)
            job.heartbeat(now(), ttl, pipeline=pipeline)
            job.prepare_for_execution(self.name, pipeline=pipeline)
            pipeline.persist(job.key)
            if remove_from_intermediate_queue:
                queue = Queue(job.origin, connection=self.connection)
                pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
            pipeline.execute()

    def handle_job_success(
        self, job: Job, queue: Queue, started_job_registry: StartedJobRegistry, execution: Execution
    ) -> None:
        if job.repeats_left:  # nothing here repeats; RQ's own path if something does
            super().handle_job_success(job, queue, started_job_registry, execution)
            return
        with self.connection.pipeline() as pipeline:
            self._success_commands(job, execution, pipeline)
            self.set_state(WorkerStatus.IDLE, pipeline=pipeline)
            dependents = pipeline.execute()[0]
        self._after_success(job, queue, dependents)

    def _success_commands(self, job: Job, execution: Execution, pipeline: redis.client.Pipeline) -> None:
        """RQ's success writes, the count of the job's dependents first."""
        assert job.started_at is not None and job.ended_at is not None
        pipeline.scard(job.dependents_key)
        self.increment_successful_job_count(pipeline=pipeline)
        self.increment_total_working_time(job.ended_at - job.started_at, pipeline)
        result_ttl = job.get_result_ttl(self.default_result_ttl)
        if result_ttl != 0:
            job._handle_success(
                result_ttl,
                pipeline=pipeline,
                worker_name=self.name,
                execution_id=execution.id,
                execution_started_at=execution.created_at,
                execution_ended_at=job.ended_at,
            )
        job.cleanup(result_ttl, pipeline=pipeline, remove_from_queue=False)
        job._status = JobStatus.FINISHED
        self.cleanup_execution(job, pipeline=pipeline, execution=execution)

    def _after_success(self, job: Job, queue: Queue, dependents: int) -> None:
        if dependents:  # RQ's own dependency handling (it watches the set itself)
            queue.enqueue_ready_jobs_by_queue(queue.move_dependents_to_ready(job))
        release_slot(job)


def run_worker(queue: Queue, *, prefix: str, burst: bool = False, stop: Stop | None = None,
               on_beat: Callable[[], None] = lambda: None) -> bool:  # fmt: skip
    """Work the ingest queue until stopped (or, with `burst`, until it is empty); whether a job ran.

    SimpleWorker runs jobs in this process: forking per job would re-pay the language models'
    page faults and lose the warm matcher. A thread publishes the worker's heartbeat every
    HEARTBEAT_EVERY s (recovery tells a dead worker's job from a slow one by it) and calls
    `on_beat` (metrics flush, liveness file). If Redis goes away the worker waits and starts
    over once it answers, unless a stop was asked meanwhile; `burst` gives up at once.
    """
    stop = stop if stop is not None else Stop()  # a Stop not yet requested is falsy
    while not stop:
        stop.install()
        try:
            return _work(queue, prefix=prefix, burst=burst, on_beat=on_beat, stop=stop)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            stop.install()  # RQ's handlers need Redis; ours do not
            if burst:
                raise
            log.error("worker_lost_redis", error=str(exc), retry_in=RECONNECT_PAUSE)
            stop.event.wait(RECONNECT_PAUSE)
    return False


def _work(queue: Queue, *, prefix: str, burst: bool, on_beat: Callable[[], None], stop: Stop) -> bool:
    """One RQ worker's life, with its heartbeat thread."""
    client = queue.connection
    worker = IngestWorker([queue], connection=client, serializer=queue.serializer)
    worker.stop_flag = stop
    stopped = threading.Event()
    beat = threading.Thread(target=_beat, args=(client, prefix, worker.name, stopped, on_beat), daemon=True,
                            name="worker-heartbeat")  # fmt: skip
    beat.start()
    log.info("worker_started", queue=queue.name, burst=burst, name=worker.name)
    try:
        return worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
    finally:
        stopped.set()
        beat.join(timeout=HEARTBEAT_EVERY + 1)
        on_beat()
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            client.delete(heartbeat_key(prefix, worker.name))


def _beat(client: redis.Redis, prefix: str, name: str, stopped: threading.Event,
          on_beat: Callable[[], None]) -> None:  # fmt: skip
    """Heartbeat and `on_beat` every HEARTBEAT_EVERY s until `stopped` (a daemon thread)."""
    while not stopped.is_set():
        try:
            client.set(heartbeat_key(prefix, name), "1", ex=HEARTBEAT_TTL)
        except redis.RedisError as exc:
            log.warning("worker_heartbeat_failed", worker=name, error=str(exc))
        on_beat()
        stopped.wait(HEARTBEAT_EVERY)
