"""The alert stage: payload, Standard Webhooks signature, one delivery attempt, retry timing."""

from __future__ import annotations

import base64
import json
import random
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from ingest.alert.http_client import MAX_RESPONSE_BYTES, make_webhook_client
from ingest.alert.webhook import build_payload, deliver, new_secret, next_delay, validate_secret
from ingest.errors import AlertDeliveryError, ConfigError
from ingest.models import Article, Subscription, alert_id
from ingest.net.clients import user_agent
from ingest.net.retry_after import parse_retry_after
from ingest.settings import Settings
from tests.conftest import LoopbackServer, RawServer, RecordedRequest, Response, free_port

ARTICLE = Article(
    id="art_1",
    feed_id=1,
    feed_url="https://feeds.example/world.xml",
    entry_key="guid:1",
    url="https://news.example/a/1",
    title="Ceasefire agreed",
    text="Both sides agreed.\n\nTalks resume.",
    summary="Both sides agreed.",
    language="en",
    language_confidence=0.97,
    published_at=datetime(2020, 10, 31, 18, 5, tzinfo=UTC),
    story_id="art_1",
    content_hash="abc",
    fetched_at=datetime(2020, 10, 31, 18, 6, tzinfo=UTC),
)


def _sub(webhook: str, secret: str | None = None) -> Subscription:
    return Subscription(
        id="sub_1",
        name="Armenia",
        query="Armenia AND ceasefire",
        webhook=webhook,
        secret=secret or new_secret(),
    )


class TestPayload:
    def test_fields_are_the_contract(self) -> None:
        """The body carries exactly the documented fields."""
        body = json.loads(build_payload(_sub("https://hooks.example/x"), ARTICLE, ["ceasefire"]))
        assert body["type"] == "article.matched"
        assert set(body["data"]) == {
            "subscription_id",
            "subscription_name",
            "query",
            "matched_terms",
            "article",
        }
        assert set(body["data"]["article"]) == {
            "id",
            "url",
            "title",
            "text",
            "summary",
            "language",
            "language_confidence",
            "published_at",
            "feed_url",
            "story_id",
        }
        assert body["data"]["article"]["published_at"] == "2020-10-31T18:05:00Z"

    def test_alert_id_is_stable_per_subscription_and_story(self) -> None:
        """Every attempt and replay of one (subscription, story) shares its webhook-id."""
        assert alert_id("sub_1", "story_a") == alert_id("sub_1", "story_a")
        assert alert_id("sub_1", "story_a") != alert_id("sub_1", "story_b")
        assert alert_id("sub_1", "story_a").startswith("msg_")


class TestSecrets:
    def test_generated_secret_is_valid(self) -> None:
        """A generated secret passes our own validation and the reference library's."""
        secret = new_secret()
        assert validate_secret(secret) == secret
        Webhook(secret)

    @pytest.mark.parametrize("bad", ["plain", "whsec_!!notbase64", "whsec_c2hvcnQ="])
    def test_bad_secret_refused(self, bad: str) -> None:
        """Secrets without the prefix, not base64, or too short are refused with a reason."""
        with pytest.raises(ConfigError, match="secret"):
            validate_secret(bad)


class TestDeliver:
    def test_signature_verifies_with_reference_library(
        self, settings: Settings, http_server: LoopbackServer
    ) -> None:
        """A receiver using the standardwebhooks package accepts what we send."""
        http_server.routes["/hook"] = Response(204)
        sub = _sub(http_server.url("/hook"))
        body = build_payload(sub, ARTICLE, ["Armenia"])
        with make_webhook_client(settings) as client:
            result = deliver(client, sub.webhook, "msg_abc", body, [sub.secret], timeout=5)
        assert result.status == 204
        request = http_server.requests[-1]
        headers = {k.lower(): v for k, v in request.headers.items()}
        payload = Webhook(sub.secret).verify(request.body, headers)
        assert payload["data"]["article"]["id"] == "art_1"
        assert headers["webhook-id"] == "msg_abc"
        assert headers["user-agent"] == user_agent(settings)

    def test_rotation_sends_both_signatures(self, settings: Settings, http_server: LoopbackServer) -> None:
        """With two secrets, receivers holding either one verify the message."""
        http_server.routes["/hook"] = Response(200)
        old, new = new_secret(), new_secret()
        body = build_payload(_sub("x", new), ARTICLE, [])
        with make_webhook_client(settings) as client:
            deliver(client, http_server.url("/hook"), "msg_r", body, [new, old], timeout=5)
        request = http_server.requests[-1]
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert len(headers["webhook-signature"].split()) == 2
        Webhook(old).verify(request.body, headers)
        Webhook(new).verify(request.body, headers)

    @pytest.mark.parametrize("status", [301, 404, 500])
    def test_non_2xx_is_a_failure(self, settings: Settings, http_server: LoopbackServer, status: int) -> None:
        """3xx is never followed and, like 4xx/5xx, fails the attempt."""
        http_server.routes["/hook"] = Response(status, headers={"Location": http_server.url("/else")})
        with (
            make_webhook_client(settings) as client,
            pytest.raises(AlertDeliveryError, match=f"HTTP {status}"),
        ):
            deliver(client, http_server.url("/hook"), "msg_x", b"{}", [new_secret()], timeout=5)
        assert [r.path for r in http_server.requests] == ["/hook"]

    def test_410_marks_gone_and_429_carries_retry_after(
        self, settings: Settings, http_server: LoopbackServer
    ) -> None:
        """410 tells the caller to disable; Retry-After reaches the caller."""
        http_server.routes["/gone"] = Response(410)
        http_server.routes["/busy"] = Response(429, headers={"Retry-After": "120"})
        with make_webhook_client(settings) as client:
            with pytest.raises(AlertDeliveryError) as gone:
                deliver(client, http_server.url("/gone"), "m", b"{}", [new_secret()], timeout=5)
            with pytest.raises(AlertDeliveryError) as busy:
                deliver(client, http_server.url("/busy"), "m", b"{}", [new_secret()], timeout=5)
        assert gone.value.gone and not busy.value.gone
        assert busy.value.retry_after == 120


def _accepted_connections(server: LoopbackServer) -> list[object]:
    """The client addresses of every TCP connection `server` accepts from now on."""
    accepted: list[object] = []
    real = server.httpd.get_request

    def get_request() -> tuple[socket.socket, object]:
        pair = real()
        accepted.append(pair[1])
        return pair

    server.httpd.get_request = get_request  # type: ignore[method-assign]
    return accepted


class _HugeAnswer:
    """Answers each request with 200 and a 50 MB body, sent as fast as the client takes it."""

    SIZE = 50_000_000

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.cut_off = threading.Event()
        self.server = RawServer(self._answer)

    def _answer(self, conn: socket.socket) -> None:
        sent = 0
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {self.SIZE}\r\n\r\n".encode())
        try:
            while sent < self.SIZE:
                conn.sendall(b"x" * 65536)
                sent += 65536
        except OSError:
            self.cut_off.set()  # the client closed the connection: it stopped reading
        self.sent.append(sent)


class TestWebhookClient:
    def test_keep_alive_reuses_one_connection(self, settings: Settings, http_server: LoopbackServer) -> None:
        """Two deliveries to one receiver go over one TCP connection."""
        http_server.routes["/hook"] = Response(204)
        accepted = _accepted_connections(http_server)
        with make_webhook_client(settings) as client:
            for _ in range(2):
                deliver(client, http_server.url("/hook"), "msg_k", b"{}", [new_secret()], timeout=5)
        assert len(http_server.requests) == 2 and len(accepted) == 1

    def test_idle_connection_is_not_reused_after_keepalive_expiry(
        self, settings: Settings, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A kept connection idle longer than KEEPALIVE_SECONDS is replaced (the receiver may close it)."""
        monkeypatch.setattr("ingest.alert.http_client.KEEPALIVE_SECONDS", 0.0)
        http_server.routes["/hook"] = Response(204)
        accepted = _accepted_connections(http_server)
        with make_webhook_client(settings) as client:
            for _ in range(2):
                time.sleep(0.01)
                deliver(client, http_server.url("/hook"), "msg_k", b"{}", [new_secret()], timeout=5)
        assert len(http_server.requests) == 2 and len(accepted) == 2

    def test_huge_answer_is_cut_off_and_its_connection_dropped(self, settings: Settings) -> None:
        """Of a 50 MB answer at most 64 KiB are read: the connection is closed, not kept for reuse."""
        server = _HugeAnswer()
        url = server.server.url("/hook")
        with make_webhook_client(settings) as client:
            started = time.monotonic()
            assert deliver(client, url, "msg_h", b"{}", [new_secret()], timeout=10).status == 200
            assert time.monotonic() - started < 5
            assert server.cut_off.wait(10)
            deliver(client, url, "msg_h", b"{}", [new_secret()], timeout=10)
        assert server.server.accepted == 2
        assert server.sent[0] < _HugeAnswer.SIZE // 2  # socket buffers absorb a few MB, never the rest
        assert MAX_RESPONSE_BYTES == 64 * 1024
        server.server.close()

    def test_slow_receiver_times_out(self, settings: Settings, http_server: LoopbackServer) -> None:
        """A receiver that does not answer within `timeout` fails the attempt, said plainly."""
        http_server.routes["/hook"] = lambda req: (time.sleep(2), Response(204))[1]
        started = time.monotonic()
        with (
            make_webhook_client(settings) as client,
            pytest.raises(AlertDeliveryError, match=r"timed out after 0\.5s$"),
        ):
            deliver(client, http_server.url("/hook"), "msg_t", b"{}", [new_secret()], timeout=0.5)
        assert time.monotonic() - started < 1.5

    def test_connection_refused_names_the_error(self, settings: Settings) -> None:
        """Nothing listening: the error type and the socket's words reach the alert's last_error."""
        url = f"http://127.0.0.1:{free_port()}/hook"
        with (
            make_webhook_client(settings) as client,
            pytest.raises(AlertDeliveryError, match=r"ConnectionRefusedError: .*refused"),
        ):
            deliver(client, url, "msg_c", b"{}", [new_secret()], timeout=5)

    def test_credentials_in_the_url_are_sent_as_basic_auth(
        self, settings: Settings, http_server: LoopbackServer
    ) -> None:
        """https://user:pass@host/ receivers keep working: Basic auth, as the httpx client sent it."""
        seen: list[RecordedRequest] = []
        http_server.routes["/hook"] = lambda req: (seen.append(req), Response(204))[1]
        url = http_server.url("/hook?x=1").replace("http://", "http://hook%40user:p%3Ass@")
        with make_webhook_client(settings) as client:
            deliver(client, url, "msg_a", b"{}", [new_secret()], timeout=5)
        headers = {k.lower(): v for k, v in seen[0].headers.items()}
        assert seen[0].path == "/hook?x=1"
        assert headers["authorization"] == "Basic " + base64.b64encode(b"hook@user:p:ss").decode()


class TestRetryTiming:
    def test_schedule_with_jitter_then_exhausted(self) -> None:
        """Each failure waits its step plus at most 10% jitter; after the last step, None."""
        rng = random.Random(1)
        schedule = (1.0, 2.0, 4.0)
        delays = [next_delay(schedule, n, rng=rng) for n in (1, 2, 3)]
        assert all(d is not None and s <= d <= s * 1.1 for d, s in zip(delays, schedule, strict=True))
        assert next_delay(schedule, 4) is None

    def test_retry_after_is_honoured_but_capped(self) -> None:
        """A receiver's Retry-After lengthens the wait, never beyond the schedule's longest step."""
        assert next_delay((1.0, 2.0, 4.0), 1, retry_after=3) >= 3  # type: ignore[operator]
        assert next_delay((1.0, 2.0, 4.0), 1, retry_after=9999) <= 4.4  # type: ignore[operator]

    def test_parse_retry_after_forms(self) -> None:
        """Delta-seconds and HTTP-dates are understood; junk is ignored."""
        assert parse_retry_after("30") == 30
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
        assert parse_retry_after("soon") is None


class TestInvalidURL:
    @pytest.mark.parametrize("url", ["http://0177.0.0.1:99999/", "http://[::1/hook", "http:///hook"])
    def test_invalid_webhook_url_is_a_delivery_error(self, settings: Settings, url: str) -> None:
        """A URL that cannot even be parsed fails the attempt with a clear error, not a crash."""
        with make_webhook_client(settings) as client, pytest.raises(AlertDeliveryError, match="invalid URL"):
            deliver(client, url, "msg_x", b"{}", [new_secret()], timeout=5)
