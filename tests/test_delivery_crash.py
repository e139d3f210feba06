"""Real `ingest send` processes against loopback receivers: killed mid-attempt, two at once, stopped
while a receiver hangs, Redis flushed mid-run. The receivers record overlapping requests per
webhook-id, so a concurrent resend of one alert would show."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from standardwebhooks.webhooks import Webhook

from app.runtime import Runtime
from ingest.settings import Settings
from tests.alerting import SECRET, lower, make_article, make_sub, posts, queue_alerts, statuses
from tests.conftest import LoopbackServer, RecordedRequest, Response, flush_keeping_marker

TIMEOUT = 1  # INGEST_WEBHOOK_TIMEOUT of the senders: a killed sender's lease ends 8 x 1 + 5 s later


@pytest.fixture()
def ctx(settings: Settings, redis_client: object) -> Iterator[Runtime]:
    """The test's own runtime (to look at the outbox) on the senders' database and Redis."""
    context = Runtime(settings.replace(webhook_timeout=float(TIMEOUT)))
    yield context
    context.close()


class Senders:
    """`ingest send` subprocesses, each in its own process group, all killed at the end."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.env = dict(os.environ, INGEST_DATA_DIR=str(settings.data_dir),
                        REDIS_URL=settings.redis_url or "",
                        INGEST_ALLOWED_NETWORKS="127.0.0.0/8", INGEST_WEBHOOK_TIMEOUT=str(TIMEOUT),
                        INGEST_WEBHOOK_RETRY_SCHEDULE="1,2,4", INGEST_LOG_FORMAT="json",
                        INGEST_LOG_LEVEL="info")  # fmt: skip
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"sender{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "send"], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


@pytest.fixture()
def senders(settings: Settings, tmp_path: Path) -> Iterator[Senders]:
    pool = Senders(settings, tmp_path)
    yield pool
    pool.stop_all()


class Overlaps:
    """A receiver handler that records, per webhook-id, requests in flight at the same time."""

    def __init__(self, answer: Callable[[RecordedRequest], Response]) -> None:
        self.answer = answer
        self.lock = threading.Lock()
        self.open: Counter[str] = Counter()
        self.overlapping: list[str] = []

    def __call__(self, req: RecordedRequest) -> Response:
        msg_id = lower(req)["webhook-id"]
        with self.lock:
            if self.open[msg_id]:
                self.overlapping.append(msg_id)
            self.open[msg_id] += 1
        try:
            return self.answer(req)
        finally:
            with self.lock:
                self.open[msg_id] -= 1


def _until(done: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _verified_ids(server: LoopbackServer) -> list[str]:
    """The webhook-id of every POST the server got, each verified."""
    requests = [r for r in server.requests if r.method == "POST"]
    for request in requests:
        Webhook(SECRET).verify(request.body, lower(request))
    return [lower(r)["webhook-id"] for r in requests]


def test_sender_killed_mid_attempt(ctx: Runtime, senders: Senders, http_server: LoopbackServer) -> None:
    """SIGKILL while the receiver holds the first request: that attempt counts, nobody resends it
    while the dead sender's lease holds, and a new sender delivers everything afterwards."""
    first = threading.Event()

    def slow_first(req: RecordedRequest) -> Response:
        if not first.is_set():
            first.set()
            time.sleep(TIMEOUT + 1)
        return Response(204)

    receiver = Overlaps(slow_first)
    http_server.routes["/hook"] = receiver
    sub = make_sub(ctx.store, http_server.url("/hook"))
    alerts = queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in range(5)])
    victim = senders.start()
    assert first.wait(60), "the sender never sent anything"
    in_flight = lower(posts(http_server)[0])["webhook-id"]
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert ctx.store.get_alert(in_flight).attempts == 1  # counted before it started
    senders.start()
    _until(lambda: statuses(ctx) == ["delivered"] * 5, f"not all delivered: {statuses(ctx)}")
    ids = _verified_ids(http_server)
    assert set(ids) == {a.id for a in alerts}
    assert receiver.overlapping == []  # never two attempts of one alert at once
    assert ctx.store.get_alert(in_flight).attempts == 2


def test_two_senders_share_the_work_and_never_an_alert(
    ctx: Runtime, senders: Senders, http_server: LoopbackServer
) -> None:
    """Two senders on one outbox: 60 alerts of 6 subscriptions, each delivered once, none concurrently."""

    def answer(req: RecordedRequest) -> Response:
        time.sleep(0.02)
        return Response(204)

    receiver = Overlaps(answer)
    alerts = []
    for n in range(6):
        http_server.routes[f"/hook{n}"] = receiver
        sub = make_sub(ctx.store, http_server.url(f"/hook{n}"), f"sub_{n}")
        alerts += queue_alerts(ctx, sub, [make_article(ctx.store, n * 100 + k) for k in range(10)])
    senders.start()
    senders.start()
    _until(lambda: statuses(ctx) == ["delivered"] * 60, f"not all delivered: {statuses(ctx)}")
    ids = _verified_ids(http_server)
    assert sorted(ids) == sorted(a.id for a in alerts)  # each exactly once
    assert receiver.overlapping == []


def test_stop_while_a_receiver_hangs(ctx: Runtime, senders: Senders, http_server: LoopbackServer) -> None:
    """SIGTERM with an attempt hanging: the sender exits within seconds, the attempt counted and
    scheduled for a retry, not lost."""
    started = threading.Event()

    def hang(req: RecordedRequest) -> Response:
        started.set()
        time.sleep(30)
        return Response(204)

    http_server.routes["/hook"] = hang
    sub = make_sub(ctx.store, http_server.url("/hook"))
    [alert] = queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
    ctx = Runtime(ctx.settings.replace(webhook_timeout=30.0))
    senders.env["INGEST_WEBHOOK_TIMEOUT"] = "30"
    proc = senders.start()
    assert started.wait(60)
    stopped_at = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - stopped_at < 6
    stored = ctx.store.get_alert(alert.id)
    assert stored.status == "pending" and stored.attempts == 1
    assert "abandoned" in (stored.last_error or "")


def test_redis_flushed_mid_run(
    ctx: Runtime, senders: Senders, http_server: LoopbackServer, redis_client: redis.Redis
) -> None:
    """FLUSHDB while alerts go out: the outbox is the record, so every story still arrives once."""

    def slow(req: RecordedRequest) -> Response:
        time.sleep(0.1)
        return Response(204)

    http_server.routes["/hook"] = slow
    sub = make_sub(ctx.store, http_server.url("/hook"))
    alerts = queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in range(20)])
    senders.start()
    _until(lambda: len(posts(http_server)) >= 2, "the sender never sent anything")
    flush_keeping_marker(redis_client)  # everything in Redis gone but this run's claim on the db
    _until(lambda: statuses(ctx) == ["delivered"] * 20, f"not all delivered: {statuses(ctx)}")
    assert sorted(_verified_ids(http_server)) == sorted(a.id for a in alerts)
