"""Faults injected into the running service: real `ingest poll` / `ingest worker` processes, a
Valkey server, SQLite or a throwaway PostgreSQL cluster, a loopback feed farm and a receiver.

After each fault the service must, without manual steps, store every entry exactly once and
deliver every (subscription, story) alert with exactly one webhook-id. Recovery settings are
shortened (see `tests.harness.service_env`); the mechanisms are the production ones.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from rq.registry import StartedJobRegistry

from app.poller import poll_once
from app.runtime import Runtime
from ingest.alert.signature import new_secret
from ingest.errors import StoreError
from ingest.models import RawEntry, Subscription
from ingest.settings import Settings
from ingest.store import Store, open_store
from testkit.rig import (
    Farm,
    PgCluster,
    Receiver,
    Service,
    Valkey,
    counts,
    seed,
    service_env,
    story_text,
    wait_for,
)
from tests.conftest import LoopbackServer, Response

pytestmark = pytest.mark.timeout(240)
SETTLE_SECONDS = 120  # generous bound for the service to catch up after a fault


@dataclass
class Rig:
    """One service under test and everything around it."""

    tmp: Path
    valkey: Valkey
    farm: Farm
    receiver: Receiver
    service: Service
    database_url: str
    subs: list[str]
    store: Store

    @property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.valkey.url, socket_connect_timeout=1)

    def start(self, workers: int = 2) -> None:
        self.service.start("poller", "poll")
        self.service.start("sender", "send")
        for n in range(1, workers + 1):
            self.service.start(f"worker-{n}", "worker")

    def state(self) -> str:
        return (
            f"db={counts(self.store)} received={self.receiver.unique_ids()} "
            f"alive={self.service.alive()}\n{self.service.tail()}"
        )

    def settle(self) -> None:
        """Wait until everything published is stored and alerted, then check it happened exactly once."""
        items, expected_alerts = self.farm.added, self.farm.added * len(self.subs)

        def done() -> bool:
            try:
                now = counts(self.store)
            except StoreError:  # the test's own connection died with the database; it reconnects
                return False
            return (
                now["articles"] == items
                and now["pending_batches"] == 0
                and self.receiver.unique_ids() == expected_alerts
            )

        wait_for(done, SETTLE_SECONDS, self.state, step=0.5)
        final = counts(self.store)
        assert final["articles"] == final["entries"] == items
        assert final["failed_batches"] == 0
        per_story = self.receiver.ids_per_story()
        assert len(per_story) == expected_alerts
        assert all(len(ids) == 1 for ids in per_story.values())
        assert {"poller", "worker-1"} <= set(self.service.alive()) or "worker-2" in self.service.alive()

    def log(self, name: str) -> str:
        return (self.service.logdir / f"{name}.log").read_text(errors="replace")


def _rig(tmp: Path, database_url: str | None, feeds: int = 2, **env: str) -> Iterator[Rig]:
    valkey = Valkey(tmp / "valkey")
    valkey.start()
    farm, receiver = Farm(feeds), Receiver()
    farm.up()
    receiver.up()
    url = database_url or f"sqlite:///{tmp / 'ingest.db'}"
    subs = seed(url, farm, receiver)
    service = Service(tmp / "logs", service_env(tmp / "data", valkey.url, url, **env))
    try:
        store = open_store(url)
        yield Rig(tmp, valkey, farm, receiver, service, url, subs, store)
        store.close()
    finally:
        service.stop_all()
        valkey.kill()
        farm.down()
        receiver.down()


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    """A SQLite-backed service (not started yet)."""
    yield from _rig(tmp_path, None)


@pytest.fixture()
def slow_job_rig(tmp_path: Path) -> Iterator[Rig]:
    """Like `rig`, with a 2-second job timeout."""
    yield from _rig(tmp_path, None, INGEST_JOB_TIMEOUT="2")


class SQLiteLock:
    """Holds SQLite's write lock, so a worker's job blocks inside the pipeline (mid-batch)."""

    def __init__(self, database_url: str) -> None:
        self.conn = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)

    def __enter__(self) -> SQLiteLock:
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def _jobs_queued(rig: Rig, batches: int) -> None:
    """Publish 20 items with the poller and the sender running; wait until their batches wait in the queue."""
    rig.service.start("poller", "poll")
    rig.service.start("sender", "send")
    rig.farm.add(20)
    wait_for(
        lambda: (
            counts(rig.store)["pending_batches"] == batches and rig.redis.llen("rq:queue:ingest") == batches
        ),
        60,
        rig.state,
    )


def _started(rig: Rig) -> bool:
    return StartedJobRegistry("ingest", connection=rig.redis).count > 0


def _some_stored(rig: Rig) -> None:
    wait_for(lambda: counts(rig.store)["articles"] > 0, 60, rig.state)


@pytest.mark.slow
def test_worker_killed_mid_batch(rig: Rig) -> None:
    """SIGKILL a worker inside a batch: the batch is queued again and processed exactly once."""
    _jobs_queued(rig, batches=2)
    with SQLiteLock(rig.database_url):
        rig.service.start("worker-1", "worker")
        wait_for(lambda: _started(rig), 60, rig.state)
        rig.service.signal("worker-1", signal.SIGKILL)
    rig.service.start("worker-2", "worker")
    rig.settle()
    assert "stopped sending heartbeats" in rig.log("poller")


@pytest.mark.slow
def test_sigterm_lets_the_worker_finish_its_batch(rig: Rig) -> None:
    """SIGTERM mid-batch: the worker finishes the batch, exits 0, and nothing needs recovery."""
    _jobs_queued(rig, batches=2)
    with SQLiteLock(rig.database_url):
        worker = rig.service.start("worker-1", "worker")
        wait_for(lambda: _started(rig), 60, rig.state)
        worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    assert counts(rig.store)["pending_batches"] == 1
    rig.service.start("worker-2", "worker")
    rig.settle()
    assert "batch_requeued" not in rig.log("poller")


@pytest.mark.slow
def test_job_past_its_timeout(slow_job_rig: Rig) -> None:
    """A batch job that runs past INGEST_JOB_TIMEOUT fails in RQ and is queued again from the database."""
    rig = slow_job_rig
    _jobs_queued(rig, batches=2)
    with SQLiteLock(rig.database_url):
        rig.service.start("worker-1", "worker")
        wait_for(lambda: _started(rig), 60, rig.state)
        time.sleep(4)  # hold the job past its 2 s timeout
    rig.settle()
    assert "ended as failed" in rig.log("poller")


@pytest.mark.slow
def test_redis_killed_and_restarted_from_its_aof(rig: Rig) -> None:
    """Redis SIGKILLed mid-flow and restarted on its AOF: nothing lost, nothing doubled."""
    rig.start()
    rig.farm.add(30)
    wait_for(lambda: counts(rig.store)["articles"] > 0, 60, rig.state)
    rig.valkey.kill(signal.SIGKILL)
    rig.farm.add(30)
    time.sleep(3)  # deliveries fail while Redis is away; the poller fetches nothing (no shared host slots)
    rig.valkey.start()
    rig.settle()
    poller = rig.log("poller")  # it saw Redis gone (in a sweep, or taking a host's slot)
    assert "poll_loop_failed" in poller or "host_slots_unavailable" in poller


@pytest.mark.slow
def test_redis_lost_entirely(rig: Rig) -> None:
    """Redis killed and replaced by an empty one: queues are rebuilt from the database."""
    rig.start()
    rig.farm.add(30)
    wait_for(lambda: counts(rig.store)["articles"] > 0, 60, rig.state)
    for worker in ("worker-1", "worker-2"):  # paused: the next batches wait in the queue Redis loses
        rig.service.signal(worker, signal.SIGSTOP)
    rig.farm.add(30)
    wait_for(lambda: _queued_jobs(rig.redis) > 0, 60, rig.state)
    rig.valkey.kill(signal.SIGKILL)
    rig.valkey.wipe()
    for worker in ("worker-1", "worker-2"):
        rig.service.signal(worker, signal.SIGCONT)
    time.sleep(3)
    rig.valkey.start()
    rig.settle()
    assert "batch_requeued" in rig.log("poller")


def _queued_jobs(client: redis.Redis) -> int:
    """Jobs waiting in RQ's queues."""
    keys = [k for k in client.scan_iter("rq:queue:*") if client.type(k) == b"list"]
    return sum(int(client.llen(k)) for k in keys)


@pytest.mark.slow
def test_postgres_down_for_a_while(tmp_path: Path) -> None:
    """PostgreSQL stopped for 12 s while items keep arriving, then started: the service catches up."""
    cluster = PgCluster()
    cluster.start()
    try:
        for rig in _rig(tmp_path, cluster.url):
            rig.start()
            rig.farm.add(20)
            _some_stored(rig)
            cluster.stop("fast")
            rig.farm.add(20)
            time.sleep(12)  # >10 poll passes, sweeps and failed jobs while the database is away
            cluster.start()
            rig.settle()
            assert "poll_loop_failed" in rig.log("poller")
    finally:
        cluster.destroy()


@pytest.mark.slow
def test_receiver_down_then_back(rig: Rig) -> None:
    """The receiver refuses connections for a while: alerts wait in the outbox and arrive once, later."""
    rig.receiver.down()
    rig.start()
    rig.farm.add(20)
    wait_for(lambda: counts(rig.store)["alerts"] == 20, 60, rig.state)
    time.sleep(4)  # several failed attempts per alert
    assert rig.receiver.unique_ids() == 0
    rig.receiver.up()
    rig.settle()
    assert "alert_retry_scheduled" in rig.log("sender")


@pytest.mark.slow
def test_poller_stops_between_passes_on_sigterm(rig: Rig) -> None:
    """SIGTERM ends `ingest poll` after its current pass, with status 0."""
    poller = rig.service.start("poller", "poll")
    rig.farm.add(5)
    wait_for(lambda: counts(rig.store)["pending_batches"] > 0, 60, rig.state)
    poller.send_signal(signal.SIGTERM)
    assert poller.wait(timeout=30) == 0
    assert "poller_stopped" in rig.log("poller")


# -- the recovery rules, in-process, on a Valkey of the test's own --------------------------------


@pytest.fixture()
def ctx(tmp_path: Path, settings: Settings, http_server: LoopbackServer) -> Iterator[Runtime]:
    """A context on a private Valkey and SQLite, with one feed of three items and one subscription."""
    valkey = Valkey(tmp_path / "valkey-unit")
    valkey.start()
    context = Runtime(settings.replace(redis_url=valkey.url, batch_max_attempts=2))
    farm_items = "".join(
        f"<item><guid>u{n}</guid><title>Unit {n}</title><description><![CDATA["
        f"{story_text(random.Random(n), n)}]]></description></item>"
        for n in range(3)
    )
    http_server.routes["/f"] = Response(
        200,
        f'<rss version="2.0"><channel><title>U</title>{farm_items}</channel></rss>'.encode(),
        {"Content-Type": "application/rss+xml"},
    )
    context.store.add_feed(http_server.url("/f"))
    context.store.add_subscription(
        Subscription(
            id="sub_unit", name="u", query="ceasefire", webhook=http_server.url("/hook"), secret=new_secret()
        )
    )
    yield context
    context.close()
    valkey.kill()


def _lose_queue(ctx: Runtime) -> None:
    ctx.redis.delete(ctx.batch_queue.queue.key)


def test_batch_lost_from_redis_is_requeued_and_processed_once(ctx: Runtime) -> None:
    """A batch whose job vanished is queued again (next attempt) and stored once; then nothing is left."""
    poll_once(ctx, only_due=False)
    [job_id] = ctx.batch_queue.queue.job_ids
    _lose_queue(ctx)
    assert ctx.recovery.recover(after=0) == 1
    [job] = ctx.batch_queue.queue.jobs
    assert job_id == "batch-1-1" and job.id == "batch-1-2"
    assert list(job.args) == [1]  # the batch id only: the entries are in the database
    assert ctx.batch_runner.run(*job.args)["stored"] == 3
    assert ctx.store.count_batches() == 0 and ctx.recovery.recover(after=0) == 0
    assert ctx.batch_runner.run(*job.args)["skipped"] == 1  # a duplicate of a finished batch does nothing


def test_queued_batch_is_left_alone(ctx: Runtime) -> None:
    """A batch whose job still waits in the queue is not queued twice."""
    poll_once(ctx, only_due=False)
    assert ctx.recovery.recover(after=0) == 0 and ctx.batch_queue.queue.count == 1


def test_retried_batch_writes_alerts_lost_between_store_and_outbox(ctx: Runtime) -> None:
    """Articles stored but their alerts never written (worker killed in between): the retry writes them."""
    poll_once(ctx, only_due=False)
    [job] = ctx.batch_queue.queue.jobs
    batch = ctx.store.get_batch(*job.args)
    assert batch is not None
    entries = batch.entries
    ctx.pipeline.process([RawEntry.from_dict(e) for e in entries])
    with sqlite3.connect(ctx.settings.effective_database_url.removeprefix("sqlite:///")) as db:
        db.execute("DELETE FROM alerts")  # as if the worker died right after storing the articles
    _lose_queue(ctx)
    ctx.recovery.recover(after=0)
    [retry] = ctx.batch_queue.queue.jobs
    summary = ctx.batch_runner.run(*retry.args)
    assert summary["stored"] == 0 and summary["alerts"] == 3
    assert len(ctx.store.list_alerts()) == 3


def test_batch_given_up_after_max_attempts_is_kept(ctx: Runtime) -> None:
    """After INGEST_BATCH_MAX_ATTEMPTS a lost batch is marked failed, with its reason, not dropped."""
    poll_once(ctx, only_due=False)
    _lose_queue(ctx)
    ctx.recovery.recover(after=0)
    _lose_queue(ctx)
    assert ctx.recovery.recover(after=0) == 0
    assert ctx.store.count_batches("failed") == 1 and ctx.store.count_batches("pending") == 0
