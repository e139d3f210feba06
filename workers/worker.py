"""The RQ worker: one process, no fork per job, models loaded before the first job."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections import deque

import redis
from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.rate_limit import release_slot
from rq.registry import StartedJobRegistry
from rq.utils import as_text, now
from rq.worker import WorkerStatus

from app.runtime import Context
from ingest.log import get_logger
from workers.recovery import HEARTBEAT_EVERY, heartbeat_key, publish_heartbeat

log = get_logger(__name__)

RECONNECT_PAUSE = 2.0  # seconds before a worker that lost Redis starts over
BEAT_EVERY = 5.0  # seconds between RQ worker heartbeats sent on their own (not in a job's pipeline)
SUSPENSION_CHECK_EVERY = 1.0  # seconds between `rq suspend` checks
GROUP_MAX = 16  # jobs of a grouped queue (alerts) taken off it at once
GROUP_SECONDS = 0.5  # ... and no more of them started after this: the rest go back to the queue's head


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

    _beat_sent_at = 0.0
    _suspension_checked_at = 0.0
    _start: redis.client.Pipeline | None = None

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
        if self._finish is not None:  # in a group: sent with the group's other successes
            self._finishing.append((job, queue, len(self._finish.command_stack)))
            self._success_commands(job, execution, self._finish)
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

    # Grouped queues (alerts): many small jobs, so a worker takes up to GROUP_MAX of them in two round
    # trips (LPOP with a count, then their hashes) and records their successes in one transaction at
    # the end, where RQ spends four round trips on each job. Each job is still started on its own,
    # just before it runs, so its status, execution and timeout are RQ's. The jobs taken but not yet
    # started are out of the queue for at most GROUP_SECONDS plus one job's run (a delivery attempt:
    # INGEST_WEBHOOK_TIMEOUT at worst), well within the sweeper's grace; on a stop request, an error
    # or after GROUP_SECONDS they go back to the head of the queue, in order. A worker killed
    # meanwhile leaves them `queued` in no queue, which the sweeper re-queues.
    grouped: frozenset[str] = frozenset()  # names of the queues whose jobs are taken in groups
    _finish: redis.client.Pipeline | None = None
    _finishing: list[tuple[Job, Queue, int]]

    def execute_job(self, job: Job, queue: Queue) -> None:
        if not self._groups(queue):
            super().execute_job(job, queue)
            return
        waiting = deque(self._take_more(queue, GROUP_MAX - 1))
        deadline = time.monotonic() + GROUP_SECONDS
        self._finish, self._finishing = self.connection.pipeline(), []
        try:
            self._run(job, queue)
            while waiting and not self._stop_requested and time.monotonic() < deadline:
                self._run(waiting.popleft(), queue)
        finally:
            try:
                self._finish_group()
            finally:
                if waiting:
                    self._give_back(queue, [job.id for job in waiting])
        self.set_state(WorkerStatus.IDLE)

    def _groups(self, queue: Queue) -> bool:
        """Whether `queue`'s jobs are taken in groups: RQ pops with BLPOP (no intermediate queue to
        keep in step) only when it listens on more than one queue; LPOP with a count needs 6.2."""
        return (
            queue.name in self.grouped
            and len(self.queues) > 1
            and self.get_redis_server_version() >= (6, 2, 0)
        )

    def _run(self, job: Job, queue: Queue) -> None:
        self.perform_job(job, queue, self.prepare_execution(job))

    def _take_more(self, queue: Queue, count: int) -> list[Job]:
        """Up to `count` more jobs off the head of `queue`; ids whose hash is gone are dropped (as RQ
        drops them), and an unreadable job goes back with the ones after it, for RQ's own dequeue."""
        popped: list[bytes] = self.connection.lpop(queue.key, count) or []  # type: ignore[assignment]
        ids = [as_text(i) for i in popped]
        if not ids:
            return []
        with self.connection.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self.job_class.key_for(job_id))
            hashes = pipe.execute()
        jobs: list[Job] = []
        for n, (job_id, data) in enumerate(zip(ids, hashes, strict=True)):
            if not data:
                continue
            job = self.job_class(job_id, connection=self.connection, serializer=self.serializer)
            try:
                job.restore(data)
            except Exception:  # RQ's own dequeue reports it, with its own handling
                self._give_back(queue, ids[n:])
                break
            jobs.append(job)
        return jobs

    def _finish_group(self) -> None:
        """One transaction for the group's successes (and the idle state), then their dependents."""
        pipeline, finishing, self._finish = self._finish, self._finishing, None
        assert pipeline is not None
        with pipeline:
            if not finishing:
                return
            self.set_state(WorkerStatus.IDLE, pipeline=pipeline)
            results = pipeline.execute()
        for job, queue, at in finishing:
            self._after_success(job, queue, results[at])

    def _give_back(self, queue: Queue, ids: list[str]) -> None:
        """Jobs taken but not started, back to the head of `queue` in their order (still `queued`)."""
        self.connection.lpush(queue.key, *reversed(ids))


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
    worker = IngestWorker(queues, connection=ctx.redis, serializer=queues[0].serializer)
    worker.grouped = frozenset({queues[1].name})  # alert deliveries: small and many
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(ctx, worker.name, stop), daemon=True, name="worker-heartbeat")
    beat.start()
    log.info("worker_started", queues=[q.name for q in queues], burst=burst, name=worker.name)
    try:
        return worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="WARNING")
    finally:
        ctx.metrics.flush()
        stop.set()
        beat.join(timeout=HEARTBEAT_EVERY + 1)
        with contextlib.suppress(redis.RedisError):  # else it expires by itself
            ctx.redis.delete(heartbeat_key(ctx.settings.redis_prefix, worker.name))


def _beat(ctx: Context, name: str, stop: threading.Event) -> None:
    """Publish the worker's heartbeat and flush its buffered metrics until `stop` is set (a daemon
    thread: it dies with the process)."""
    while not stop.is_set():
        publish_heartbeat(ctx.redis, ctx.settings.redis_prefix, name)
        ctx.metrics.flush()  # an idle worker's last counts reach Redis within HEARTBEAT_EVERY s
        stop.wait(HEARTBEAT_EVERY)
