"""Exactly once per story on the receiver's side, with real `ingest worker` processes that crash
(SIGKILL mid-delivery) and a Redis that loses everything (FLUSHDB mid-run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from standardwebhooks.webhooks import Webhook

from app.runtime import Context, init_context
from app.sweeper import sweep
from ingest.settings import Settings
from tests.alerting import SECRET, lower, make_article, make_sub, posts, queue_alerts, statuses
from tests.conftest import LoopbackServer, RecordedRequest, Response

TIMEOUT = 3  # INGEST_WEBHOOK_TIMEOUT of the workers: a killed worker's lock expires 13 s later


@pytest.fixture()
def ctx(settings: Settings, redis_client: object) -> Iterator[Context]:
    """The test's own context (store, sweeper) on the same database and Redis as the workers."""
    context = init_context(settings.replace(webhook_timeout=float(TIMEOUT), sweep_grace=0.0))
    yield context
    context.close()


class Workers:
    """`ingest worker` subprocesses, each in its own process group (the RQ scheduler is a child)."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = dict(
            os.environ,
            INGEST_DATA_DIR=str(settings.data_dir),
            REDIS_URL=settings.redis_url or "",
            INGEST_ALLOWED_NETWORKS="127.0.0.0/8",
            INGEST_WEBHOOK_TIMEOUT=str(TIMEOUT),
            INGEST_WEBHOOK_RETRY_SCHEDULE="1,2,4",
            INGEST_LOG_FORMAT="json",
            INGEST_LOG_LEVEL="warning",
        )
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"worker{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.fixture()
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    """Worker processes started by the test, all killed at the end."""
    pool = Workers(settings, tmp_path)
    yield pool
    pool.stop_all()


def _sweep_until(ctx: Context, done: Callable[[], bool], limit: float = 120.0) -> None:
    """Run the sweeper every half second until `done()`; fail if it never is."""
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, f"not all delivered: {statuses(ctx)}"
        sweep(ctx)
        time.sleep(0.5)


def _exactly_once(server: LoopbackServer, expected: set[str]) -> list[str]:
    """Verify every request, deduplicate by webhook-id as a receiver would; returns the raw id list."""
    ids = []
    for request in posts(server):
        Webhook(SECRET).verify(request.body, lower(request))
        ids.append(lower(request)["webhook-id"])
    assert set(ids) == expected  # every story arrived; dedup by webhook-id leaves one each
    return ids


def test_worker_killed_mid_delivery(ctx: Context, workers: Workers, http_server: LoopbackServer) -> None:
    """SIGKILL while the receiver holds the first request: a new worker and the sweeper deliver all."""
    first = threading.Event()

    def slow_first(req: RecordedRequest) -> Response:
        if not first.is_set():
            first.set()
            time.sleep(TIMEOUT + 2)  # still in flight when the worker dies
        return Response(204)

    http_server.routes["/hook"] = slow_first
    sub = make_sub(ctx.store, http_server.url("/hook"))
    alerts = queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in range(5)])
    victim = workers.start()
    assert first.wait(120), "the worker never sent anything"
    in_flight = lower(posts(http_server)[0])["webhook-id"]
    workers.kill(victim)
    assert ctx.store.get_alert(in_flight).status == "pending"  # the crash lost the outcome, not the alert
    workers.start()
    _sweep_until(ctx, lambda: statuses(ctx) == ["delivered"] * 5)
    ids = _exactly_once(http_server, {a.id for a in alerts})
    assert len({a.id for a in alerts}) == 5  # one webhook-id per story
    assert ids.count(in_flight) >= 2  # sent again after the crash; the receiver's dedup drops the copy


def test_redis_flushed_mid_run(
    ctx: Context, workers: Workers, http_server: LoopbackServer, redis_client: redis.Redis
) -> None:
    """FLUSHDB while alerts are queued: the sweeper rebuilds the queue from the outbox; each story once."""

    def slow(req: RecordedRequest) -> Response:
        time.sleep(0.3)
        return Response(204)

    http_server.routes["/hook"] = slow
    sub = make_sub(ctx.store, http_server.url("/hook"))
    alerts = queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in range(8)])
    workers.start()
    deadline = time.monotonic() + 120
    while len(posts(http_server)) < 2:
        assert time.monotonic() < deadline, "the worker never sent anything"
        time.sleep(0.05)
    marker = redis_client.get("ingest-test-run")
    redis_client.flushdb()
    if marker:
        redis_client.set("ingest-test-run", marker, ex=3600)  # keep this run's claim on the db number
    assert "pending" in statuses(ctx)  # the flush took queued work with it
    _sweep_until(ctx, lambda: statuses(ctx) == ["delivered"] * 8)
    _exactly_once(http_server, {a.id for a in alerts})


def test_job_taken_but_never_started_is_queued_again(ctx: Context, http_server: LoopbackServer) -> None:
    """A worker that popped an alert's job and lost Redis (or died) before marking it started leaves
    a job hash saying `queued` in no queue; the sweeper queues the attempt again, once."""
    from workers.worker import run_worker

    http_server.routes["/hook"] = Response(204)
    sub = make_sub(ctx.store, http_server.url("/hook"))
    [alert] = queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
    queue = ctx.queues[1]
    assert queue.connection.lpop(queue.key) is not None  # taken, as BLPOP does, then nothing
    assert sweep(ctx) == 1 and queue.count == 1
    assert sweep(ctx) == 0  # its new job waits in the queue: alive
    run_worker(ctx, burst=True)
    assert statuses(ctx) == ["delivered"] and len(posts(http_server)) == 1
    assert alert.id == lower(posts(http_server)[0])["webhook-id"]
