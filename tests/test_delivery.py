"""Delivery through the sender: retries, dead letters, 410, 3xx, 429, hangs, huge bodies, send-time
network refusal, rotation, the disable rule, digests, the rate limit, circuits, order and fairness."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.runtime import Runtime
from ingest.alert import ratelimit
from ingest.alert.signature import new_secret
from ingest.models import utcnow
from ingest.services.digests import cut_digests
from ingest.settings import Settings
from tests.alerting import (
    SECRET,
    deliver,
    drain,
    lower,
    make_article,
    make_sub,
    posts,
    queue_alerts,
    statuses,
)
from tests.conftest import LoopbackServer, RecordedRequest, Response


@pytest.fixture()
def ctx(settings: Settings, redis_client: object) -> Iterator[Runtime]:
    """A worker context with a fast retry schedule and a short receiver timeout."""
    context = Runtime(settings.replace(webhook_retry_schedule=(0.5, 0.5), webhook_timeout=1.0))
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
    def test_dead_lettered_after_last_retry(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """A receiver failing every time gets 1 + len(schedule) attempts, then the alert is failed."""
        http_server.routes["/hook"] = Response(500)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        drain(ctx, lambda: statuses(ctx) == ["failed"])
        alert = ctx.store.list_alerts()[0]
        assert alert.attempts == 3 and "HTTP 500" in (alert.last_error or "")
        assert len({lower(r)["webhook-id"] for r in posts(http_server)}) == 1
        assert len(posts(http_server)) == 3

    def test_410_disables_and_fails_the_rest(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """410 Gone disables the subscription with a reason; its other alerts are dead-lettered unsent."""
        http_server.routes["/hook"] = Response(410)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1), make_article(ctx.store, 2)])
        drain(ctx, lambda: statuses(ctx) == ["failed", "failed"])
        stored = ctx.store.get_subscription(sub.id)
        assert stored.status == "disabled" and "410 Gone" in (stored.status_reason or "")
        assert len(posts(http_server)) == 1

    def test_redirect_is_a_failure_never_followed(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """A 302 is recorded as a failed attempt and its Location is never requested."""
        http_server.routes["/hook"] = Response(302, headers={"Location": http_server.url("/else")})
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        drain(ctx, lambda: ctx.store.list_alerts()[0].attempts >= 1)
        assert "HTTP 302" in (ctx.store.list_alerts()[0].last_error or "")
        assert not [r for r in http_server.requests if r.path == "/else"]

    def test_429_retry_after_sets_the_next_attempt(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """Retry-After: 3 puts the next attempt at least 3 s out (above the 0.5 s step), then it succeeds."""
        calls: list[RecordedRequest] = []

        def busy_once(req: RecordedRequest) -> Response:
            calls.append(req)
            return Response(429, headers={"Retry-After": "3"}) if len(calls) == 1 else Response(204)

        http_server.routes["/hook"] = busy_once
        ctx = Runtime(ctx.settings.replace(webhook_retry_schedule=(0.5, 5.0)))
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        before = utcnow()
        deliver(ctx)
        alert = ctx.store.list_alerts()[0]
        assert alert.status == "pending" and alert.next_attempt_at is not None
        assert alert.next_attempt_at >= before + timedelta(seconds=3)
        drain(ctx, lambda: statuses(ctx) == ["delivered"])
        assert len(calls) == 2

    def test_hanging_receiver_times_out(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """A receiver that does not answer within INGEST_WEBHOOK_TIMEOUT fails the attempt ("timed out")."""
        http_server.routes["/hook"] = lambda req: (time.sleep(3), Response(200))[1]
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        deliver(ctx)
        alert = ctx.store.list_alerts()[0]
        assert alert.status == "pending" and alert.attempts == 1
        assert "timed out" in (alert.last_error or "")

    @pytest.mark.parametrize(("status", "outcome"), [(200, "delivered"), (500, "pending")])
    def test_endless_body_is_not_read(self, ctx: Runtime, status: int, outcome: str) -> None:
        """An answer with an endless body is judged by its status; the read stops and the connection drops."""
        server = _EndlessServer(status)
        sub = make_sub(ctx.store, f"http://127.0.0.1:{server.port}/hook")
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        deliver(ctx)
        assert ctx.store.list_alerts()[0].status == outcome
        assert server.cut_off.wait(10)

    def test_unsafe_address_refused_at_send_time(
        self, ctx: Runtime, settings: Settings, http_server: LoopbackServer
    ) -> None:
        """A webhook registered while loopback was allowed is refused when sending without that permission."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        strict = Runtime(settings.replace(allowed_networks=(), webhook_retry_schedule=(60.0,)))
        queue_alerts(strict, sub, [make_article(strict.store, 1)])
        deliver(strict)
        alert = strict.store.list_alerts()[0]
        assert alert.status == "pending" and alert.attempts == 1
        assert "refused" in (alert.last_error or "")
        assert http_server.requests == []


class TestSubscriptionHealth:
    def test_rotation_signs_with_both_then_only_the_new(
        self, ctx: Runtime, http_server: LoopbackServer
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

    def test_failing_for_days_disables(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """A failure INGEST_DISABLE_AFTER_DAYS after the first one, no success between, disables it."""
        http_server.routes["/hook"] = Response(503)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        ctx.store.record_subscription_delivery(sub.id, ok=False, at=utcnow() - timedelta(days=4))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        deliver(ctx)
        stored = ctx.store.get_subscription(sub.id)
        assert stored.status == "disabled" and "3 days without a success" in (stored.status_reason or "")
        assert statuses(ctx) == ["failed"]

    def test_success_resets_the_failure_clock(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """A delivered alert clears `failing_since` and sets `last_success_at`."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        ctx.store.record_subscription_delivery(sub.id, ok=False, at=utcnow() - timedelta(days=1))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        deliver(ctx)
        stored = ctx.store.get_subscription(sub.id)
        assert stored.failing_since is None and stored.last_success_at is not None


class TestDigestAndRateLimit:
    def test_digest_one_webhook_per_window(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """Matches are held, then sent as one signed article.digest with its own webhook-id, once."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"), digest_minutes=5)
        alerts = queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in (1, 2, 3)])
        deliver(ctx)
        assert statuses(ctx) == ["held"] * 3 and posts(http_server) == []
        later = utcnow() + timedelta(minutes=6)
        cut = cut_digests(ctx.store, now=later)
        assert len(cut.digests) == 1 and cut_digests(ctx.store, now=later).digests == []
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
        self, ctx: Runtime, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With 2/min, two of five alerts go now; three stay pending, due later, no attempt spent."""
        monkeypatch.setattr(ratelimit, "WINDOW_SECONDS", 3600.0)  # no window boundary during the test
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"), rate_limit=2)
        queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in range(5)])
        deliver(ctx)
        assert statuses(ctx) == ["delivered"] * 2 + ["pending"] * 3
        waiting = [a for a in ctx.store.list_alerts() if a.status == "pending"]
        assert all(a.attempts == 0 and a.next_attempt_at and a.next_attempt_at > utcnow() for a in waiting)
        assert len(posts(http_server)) == 2

    def test_rate_limit_spreads_a_burst_over_windows(self, redis_client: redis.Redis) -> None:
        """The k-th send over the limit waits for window ceil(k / limit) after the current one."""
        now = 1_000_040.0  # 20 s into a one-minute window
        waits = [ratelimit.acquire(redis_client, "t:", "sub", 2, now=now) for _ in range(6)]
        assert waits == [0.0, 0.0, 40.0, 40.0, 100.0, 100.0]


class TestOrderFairnessAndCircuits:
    def test_a_subscriptions_alerts_go_out_in_the_order_their_stories_were_seen(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """Twelve alerts of one subscription arrive in outbox order (one group at a time, in order)."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        alerts = queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in range(12)])
        drain(ctx, lambda: statuses(ctx) == ["delivered"] * 12)
        assert [lower(r)["webhook-id"] for r in posts(http_server)] == [a.id for a in alerts]

    def test_one_burst_sends_everything_due_over_several_claim_rounds(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """`ingest send --burst` does not stop after the first round (groups of 8) while more is due."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        queue_alerts(ctx, sub, [make_article(ctx.store, n) for n in range(20)])
        assert deliver(ctx) == 20
        assert statuses(ctx) == ["delivered"] * 20

    def test_a_long_backlog_does_not_starve_a_new_subscription(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """A subscription with 200 pending alerts does not delay another's single one past the first round."""
        http_server.routes["/big"] = Response(204)
        http_server.routes["/small"] = Response(204)
        big = make_sub(ctx.store, http_server.url("/big"), "sub_big")
        small = make_sub(ctx.store, http_server.url("/small"), "sub_small")
        queue_alerts(ctx, big, [make_article(ctx.store, n) for n in range(200)])
        queue_alerts(ctx, small, [make_article(ctx.store, 1000)])
        drain(ctx, lambda: len(posts(http_server, "/small")) == 1)
        order = [r.path for r in http_server.requests]
        assert order.index("/small") <= 8  # within the first claim round (groups of 8)

    def test_a_failing_receiver_opens_its_circuit_and_a_healthy_one_is_not_delayed(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """After five failures in a row the bad origin gets no attempts (alerts wait, unspent); the
        healthy receiver on another origin gets all of its alerts meanwhile."""
        bad_server = LoopbackServer()
        try:
            bad_server.routes["/hook"] = Response(500)
            http_server.routes["/hook"] = Response(204)
            bad = make_sub(ctx.store, bad_server.url("/hook"), "sub_bad")
            good = make_sub(ctx.store, http_server.url("/hook"), "sub_good")
            ctx = Runtime(ctx.settings.replace(webhook_retry_schedule=(0.1,) * 10))
            queue_alerts(ctx, bad, [make_article(ctx.store, n) for n in range(8)])
            queue_alerts(ctx, good, [make_article(ctx.store, n) for n in range(100, 108)])
            drain(ctx, lambda: statuses(ctx, "sub_good") == ["delivered"] * 8 and len(posts(bad_server)) >= 5)
            receivers = {r.origin: r for r in ctx.store.get_receivers()}
            opened = receivers[f"http://127.0.0.1:{bad_server.port}"]
            assert opened.state == "open" and opened.open_until is not None and opened.open_until > utcnow()
            attempts_before = len(posts(bad_server))
            deliver(ctx)
            assert len(posts(bad_server)) == attempts_before  # open: no attempt spent
            assert ctx.store.delivery_stats(utcnow()).open_circuits == 1
        finally:
            bad_server.close()

    def test_an_open_circuit_closes_after_a_successful_probe(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """When the cool-down has passed, one probe goes out; its success closes the circuit."""
        from ingest.store.outbox import ReceiverState

        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        origin = f"http://127.0.0.1:{http_server.port}"
        ctx.store.save_receiver(ReceiverState(origin, "open", 5, utcnow() + timedelta(hours=1), "HTTP 500"))
        queue_alerts(ctx, sub, [make_article(ctx.store, 1)])
        deliver(ctx)
        assert posts(http_server) == [] and statuses(ctx) == ["pending"]
        ctx.store.save_receiver(ReceiverState(origin, "open", 5, utcnow() - timedelta(seconds=1), "HTTP 500"))
        drain(ctx, lambda: statuses(ctx) == ["delivered"])
        assert {r.origin: r.state for r in ctx.store.get_receivers()}[origin] == "closed"

    def test_replay_gives_one_more_attempt_with_the_same_id(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """A dead letter replayed gets exactly one attempt; failing again, it is dead-lettered at once."""
        http_server.routes["/hook"] = Response(500)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        alert = queue_alerts(ctx, sub, [make_article(ctx.store, 1)])[0]
        drain(ctx, lambda: statuses(ctx) == ["failed"])
        sent = len(posts(http_server))
        assert ctx.store.retry_failed_alert(alert.id, attempts=len(ctx.settings.webhook_retry_schedule))
        drain(ctx, lambda: statuses(ctx) == ["failed"] and len(posts(http_server)) == sent + 1)
        deliver(ctx)
        assert len(posts(http_server)) == sent + 1
        assert {lower(r)["webhook-id"] for r in posts(http_server)} == {alert.id}

    def test_attempts_abandoned_by_dead_senders_still_end_in_the_dead_letters(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """An alert whose attempts were all spent by senders that died is dead-lettered, not sent forever."""
        from ingest.models import Alert

        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        article = make_article(ctx.store, 1)
        used = len(ctx.settings.webhook_retry_schedule) + 1
        ctx.store.add_alerts([Alert(id="msg_spent", subscription_id=sub.id, story_id=article.story_id,
                                    article_id=article.id, matched_terms=["x"], attempts=used,
                                    created_at=utcnow())])  # fmt: skip
        deliver(ctx)
        alert = ctx.store.get_alert("msg_spent")
        assert alert.status == "failed" and "attempts used up" in (alert.last_error or "")
        assert posts(http_server) == []

    def test_a_large_article_is_sent_truncated_with_its_length(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """article.text is cut at 64 KiB in the webhook, with "truncated" and the full length."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(ctx.store, http_server.url("/hook"))
        text = "ceasefire " * 20_000
        queue_alerts(ctx, sub, [make_article(ctx.store, 1, text=text)])
        drain(ctx, lambda: len(posts(http_server)) == 1)
        article = Webhook(SECRET).verify(posts(http_server)[0].body, lower(posts(http_server)[0]))["data"][
            "article"
        ]
        assert article["truncated"] is True and article["text_length"] == len(text)
        assert len(article["text"].encode()) <= 64 * 1024 and text.startswith(article["text"])
