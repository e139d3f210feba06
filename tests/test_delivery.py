"""Delivery through a real worker: retries, dead letters, 410, 3xx, 429, hangs, huge bodies,
send-time network refusal, rotation, the disable rule, digests and the rate limit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from rq.registry import ScheduledJobRegistry
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.runtime import Context, init_context
from ingest.alert import ratelimit
from ingest.alert.signature import new_secret
from ingest.models import utcnow
from ingest.services.digests import cut_digests
from ingest.settings import Settings
from tests.alerting import SECRET, drain, lower, make_article, make_sub, posts, queue_alerts, statuses
from tests.conftest import LoopbackServer, RecordedRequest, Response
from workers.jobs import enqueue_alerts
from workers.worker import run_worker


@pytest.fixture()
def ctx(settings: Settings, redis_client: object) -> Iterator[Context]:
    """A worker context with a fast retry schedule and a short receiver timeout."""
    context = init_context(settings.replace(webhook_retry_schedule=(0.5, 0.5), webhook_timeout=1.0))
    yield context
    context.close()


class _EndlessServer:
    """Answers every request with `status` and a body that never ends; counts what it managed to send."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.sent = 0
        self.cut_off = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.recv(65536)
        head = f"HTTP/1.1 {self.status} X\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode())
        try:
            while self.sent < 1 << 30:
                conn.sendall(b"x" * 65536)
                self.sent += 65536
        except OSError:
            self.cut_off.set()  # the client closed the connection: it stopped reading
        finally:
            conn.close()


class TestReceivers:
    def test_dead_lettered_after_last_retry(self, ctx: Context, http_server: LoopbackServer) -> None:
        """A receiver failing every time gets 1 + len(schedule) attempts, then the alert is failed."""
        http_server.routes["/hook"] = Response(500)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        drain(ctx, lambda: statuses(ctx) == ["failed"])
        alert = ctx.store.list_alerts()[0]
        assert alert.attempts == 3 and "HTTP 500" in (alert.last_error or "")
        assert len({lower(r)["webhook-id"] for r in posts(http_server)}) == 1
        assert len(posts(http_server)) == 3

    def test_lock_kept_after_success_released_after_failure(
        self, ctx: Context, http_server: LoopbackServer
    ) -> None:
        """A delivered alert's lock is left to expire and a second job sends nothing; a failed
        attempt frees its lock at once, so the retry (0.5 s later here) is not locked out."""
        from workers.jobs import deliver_alert

        http_server.routes["/ok"] = Response(204)
        http_server.routes["/bad"] = Response(500)
        ok_sub = make_sub(ctx.store, http_server.url("/ok"))
        bad_sub = make_sub(ctx.store, http_server.url("/bad"), "sub_bad")
        ok_alert = queue_alerts(ctx, ok_sub, [make_article(ctx.store, 1)])[0]
        bad_alert = queue_alerts(ctx, bad_sub, [make_article(ctx.store, 2)])[0]
        lock_key = f"{ctx.settings.redis_prefix}alert-lock:"
        assert deliver_alert(ok_alert.id) == "delivered"
        assert ctx.redis.exists(lock_key + ok_alert.id)
        assert deliver_alert(ok_alert.id) == "locked"
        assert deliver_alert(bad_alert.id) == "retrying"
        assert not ctx.redis.exists(lock_key + bad_alert.id)
        assert deliver_alert(bad_alert.id) == "retrying"
        assert len(posts(http_server, "/ok")) == 1 and len(posts(http_server, "/bad")) == 2

    def test_410_disables_and_fails_the_rest(self, ctx: Context, http_server: LoopbackServer) -> None:
        """410 Gone disables the subscription with a reason; its other alerts are dead-lettered unsent."""
        http_server.routes["/hook"] = Response(410)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1), make_article(ctx.store, 2)])
        drain(ctx, lambda: statuses(ctx) == ["failed", "failed"])
        stored = ctx.store.get_subscription(sub.id)
        assert stored.status == "disabled" and "410 Gone" in (stored.status_reason or "")
        assert len(posts(http_server)) == 1

    def test_redirect_is_a_failure_never_followed(self, ctx: Context, http_server: LoopbackServer) -> None:
        """A 302 is recorded as a failed attempt and its Location is never requested."""
        http_server.routes["/hook"] = Response(302, headers={"Location": http_server.url("/else")})
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        drain(ctx, lambda: ctx.store.list_alerts()[0].attempts >= 1)
        assert "HTTP 302" in (ctx.store.list_alerts()[0].last_error or "")
        assert not [r for r in http_server.requests if r.path == "/else"]

    def test_429_retry_after_sets_the_next_attempt(self, ctx: Context, http_server: LoopbackServer) -> None:
        """Retry-After: 3 puts the next attempt at least 3 s out (above the 0.5 s step), then it succeeds."""
        calls: list[RecordedRequest] = []

        def busy_once(req: RecordedRequest) -> Response:
            calls.append(req)
            return Response(429, headers={"Retry-After": "3"}) if len(calls) == 1 else Response(204)

        http_server.routes["/hook"] = busy_once
        ctx = init_context(ctx.settings.replace(webhook_retry_schedule=(0.5, 5.0)))
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        before = utcnow()
        run_worker(ctx, burst=True)
        alert = ctx.store.list_alerts()[0]
        assert alert.status == "pending" and alert.next_attempt_at is not None
        assert alert.next_attempt_at >= before + timedelta(seconds=3)
        drain(ctx, lambda: statuses(ctx) == ["delivered"])
        assert len(calls) == 2

    def test_hanging_receiver_times_out(self, ctx: Context, http_server: LoopbackServer) -> None:
        """A receiver that does not answer within INGEST_WEBHOOK_TIMEOUT fails the attempt ("timed out")."""
        http_server.routes["/hook"] = lambda req: (time.sleep(3), Response(200))[1]
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        run_worker(ctx, burst=True)
        alert = ctx.store.list_alerts()[0]
        assert alert.status == "pending" and alert.attempts == 1
        assert "timed out" in (alert.last_error or "")

    @pytest.mark.parametrize(("status", "outcome"), [(200, "delivered"), (500, "pending")])
    def test_endless_body_is_not_read(self, ctx: Context, status: int, outcome: str) -> None:
        """An answer with an endless body is judged by its status; the read stops and the connection drops."""
        server = _EndlessServer(status)
        sub = make_sub(ctx.store, f"http://127.0.0.1:{server.port}/hook")
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        run_worker(ctx, burst=True)
        assert ctx.store.list_alerts()[0].status == outcome
        assert server.cut_off.wait(10)

    def test_unsafe_address_refused_at_send_time(
        self, ctx: Context, settings: Settings, http_server: LoopbackServer
    ) -> None:
        """A webhook registered while loopback was allowed is refused when sending without that permission."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        strict = init_context(settings.replace(allowed_networks=(), webhook_retry_schedule=(60.0,)))
        queue_alerts(strict, sub, [make_article(strict.store, 1)])
        run_worker(strict, burst=True)
        alert = strict.store.list_alerts()[0]
        assert alert.status == "pending" and alert.attempts == 1
        assert "refused" in (alert.last_error or "")
        assert http_server.requests == []


class TestSubscriptionHealth:
    def test_rotation_signs_with_both_then_only_the_new(
        self, ctx: Context, http_server: LoopbackServer
    ) -> None:
        """During the grace period both secrets verify; after it, only the new one does."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        new = new_secret()
        ctx.store.rotate_subscription_secret(sub.id, new, previous_valid_until=utcnow() + timedelta(hours=1))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        drain(ctx, lambda: len(posts(http_server)) == 1)
        first = posts(http_server)[0]
        Webhook(SECRET).verify(first.body, lower(first))
        Webhook(new).verify(first.body, lower(first))
        newest = new_secret()
        ctx.store.rotate_subscription_secret(sub.id, newest, previous_valid_until=utcnow())
        queue_alerts(ctx, sub, [make_article(ctx.store, 2)])
        drain(ctx, lambda: len(posts(http_server)) == 2)
        second = posts(http_server)[1]
        Webhook(newest).verify(second.body, lower(second))
        with pytest.raises(WebhookVerificationError):
            Webhook(new).verify(second.body, lower(second))

    def test_failing_for_days_disables(self, ctx: Context, http_server: LoopbackServer) -> None:
        """A failure INGEST_DISABLE_AFTER_DAYS after the first one, no success between, disables it."""
        http_server.routes["/hook"] = Response(503)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        ctx.store.record_subscription_delivery(sub.id, ok=False, at=utcnow() - timedelta(days=4))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        run_worker(ctx, burst=True)
        stored = ctx.store.get_subscription(sub.id)
        assert stored.status == "disabled" and "3 days without a success" in (stored.status_reason or "")
        assert statuses(ctx) == ["failed"]

    def test_success_resets_the_failure_clock(self, ctx: Context, http_server: LoopbackServer) -> None:
        """A delivered alert clears `failing_since` and sets `last_success_at`."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        ctx.store.record_subscription_delivery(sub.id, ok=False, at=utcnow() - timedelta(days=1))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        run_worker(ctx, burst=True)
        stored = ctx.store.get_subscription(sub.id)
        assert stored.failing_since is None and stored.last_success_at is not None


class TestDigestAndRateLimit:
    def test_digest_one_webhook_per_window(self, ctx: Context, http_server: LoopbackServer) -> None:
        """Matches are held, then sent as one signed article.digest with its own webhook-id, once."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"), digest_minutes=5)
        alerts = queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in (1, 2, 3)])
        run_worker(ctx, burst=True)
        assert statuses(ctx) == ["held"] * 3 and posts(http_server) == []
        later = utcnow() + timedelta(minutes=6)
        cut = cut_digests(ctx.store, now=later)
        assert len(cut.digests) == 1 and cut_digests(ctx.store, now=later).digests == []
        enqueue_alerts(ctx, cut.digests)
        drain(ctx, lambda: len(posts(http_server)) == 1)
        request = posts(http_server)[0]
        payload = Webhook(SECRET).verify(request.body, lower(request))
        assert payload["type"] == "article.digest" and lower(request)["webhook-id"] == cut.digests[0].id
        assert {a["alert_id"] for a in payload["data"]["articles"]} == {a.id for a in alerts}
        assert sorted(a["id"] for a in payload["data"]["articles"]) == ["art_1", "art_2", "art_3"]
        assert payload["data"]["count"] == 3 and cut.digests[0].id not in {a.id for a in alerts}
        assert queue_alerts(ctx, sub, [make_article(ctx.store, 1)]) == []  # a story is in one digest only
        assert statuses(ctx) == ["delivered", "digested", "digested", "digested"]

    def test_rate_limit_delays_never_drops(
        self, ctx: Context, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With 2/min, two of five alerts go now; three stay pending on a scheduled later attempt."""
        monkeypatch.setattr(ratelimit, "WINDOW_SECONDS", 3600.0)  # no window boundary during the test
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"), rate_limit=2)
        queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in range(5)])
        run_worker(ctx, burst=True)
        assert statuses(ctx) == ["delivered"] * 2 + ["pending"] * 3
        waiting = [a for a in ctx.store.list_alerts() if a.status == "pending"]
        assert all(a.attempts == 0 and a.next_attempt_at and a.next_attempt_at > utcnow() for a in waiting)
        assert ScheduledJobRegistry(queue=ctx.queues[1]).count == 3
        assert len(posts(http_server)) == 2

    def test_rate_limit_spreads_a_burst_over_windows(self, redis_client: redis.Redis) -> None:
        """The k-th send over the limit waits for window ceil(k / limit) after the current one."""
        now = 1_000_040.0  # 20 s into a one-minute window
        waits = [ratelimit.acquire(redis_client, "t:", "sub", 2, now=now) for _ in range(6)]
        assert waits == [0.0, 0.0, 40.0, 40.0, 100.0, 100.0]
