"""The alert stage: payload, Standard Webhooks signature, retry timing, circuits, the sender's client."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from ingest.alert.payload import MAX_DIGEST_BYTES, article_json, build_digest_payload, build_payload
from ingest.alert.policy import CIRCUIT_THRESHOLD, Circuit, next_delay
from ingest.alert.sender import WebhookSender
from ingest.alert.signature import new_secret, signed_headers, validate_secret
from ingest.errors import ConfigError
from ingest.models import Alert, Article, Subscription, alert_id
from ingest.net.clients import make_webhook_session
from ingest.net.retry_after import parse_retry_after
from ingest.settings import Settings
from tests.conftest import LoopbackServer, Response

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
    def test_spliced_article_gives_the_bytes_of_one_dump(self) -> None:
        """The article spliced into the envelope (built once per article) is byte for byte one json.dumps."""
        sub = _sub("https://hooks.example/x")
        article = replace(ARTICLE, title='Quote " and \\ and é', text="Ünïcode text.\n\nMore {}[]")
        body = build_payload(sub, article, ["Armenia", "ceasefire"], article_text=article_json(article))
        data = json.loads(body)
        whole = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        assert body == whole
        assert json.loads(build_payload(sub, article, ["Armenia", "ceasefire"]))["data"] == data["data"]
        assert data["data"]["article"]["title"] == 'Quote " and \\ and é'
        assert list(data["data"]) == [
            "subscription_id",
            "subscription_name",
            "query",
            "matched_terms",
            "article",
        ]

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


class TestSignature:
    def test_signature_verifies_with_reference_library(self) -> None:
        """A receiver using the standardwebhooks package accepts what we sign."""
        sub = _sub("https://hooks.example/x")
        body = build_payload(sub, ARTICLE, ["Armenia"])
        headers = signed_headers([sub.secret], "msg_abc", int(time.time()), body)
        payload = Webhook(sub.secret).verify(body, headers)
        assert payload["data"]["article"]["id"] == "art_1" and headers["webhook-id"] == "msg_abc"

    def test_rotation_sends_both_signatures(self) -> None:
        """With two secrets, receivers holding either one verify the message."""
        old, new = new_secret(), new_secret()
        body = build_payload(_sub("x", new), ARTICLE, [])
        headers = signed_headers([new, old], "msg_r", int(time.time()), body)
        assert len(headers["webhook-signature"].split()) == 2
        Webhook(old).verify(body, headers)
        Webhook(new).verify(body, headers)

    def test_a_stale_timestamp_is_refused_by_receivers(self) -> None:
        """The timestamp is signed: a replayed old message fails verification."""
        sub = _sub("x")
        body = build_payload(sub, ARTICLE, [])
        headers = signed_headers([sub.secret], "msg_old", int(time.time()) - 3600, body)
        with pytest.raises(Exception, match="timestamp"):
            Webhook(sub.secret).verify(body, headers)


class TestBounds:
    def test_a_digest_stays_under_its_byte_cap(self) -> None:
        """200 members of 300 KB each make a digest of at most about MAX_DIGEST_BYTES."""
        big = replace(ARTICLE, text="word " * 60_000)
        digest = Alert(id="msg_d", subscription_id="sub_1", story_id="digest:2020-10-31T19:00:00Z",
                       article_id="", matched_terms=[])  # fmt: skip
        items = [(replace(digest, id=f"msg_{n}"), replace(big, id=f"art_{n}")) for n in range(200)]
        body = build_digest_payload(_sub("x"), digest, items)
        data = json.loads(body)["data"]
        assert data["count"] == 200 and all(a["truncated"] for a in data["articles"])
        assert len(body) < MAX_DIGEST_BYTES * 1.3


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


class TestCircuit:
    def test_opens_after_the_threshold_and_doubles_its_cool_down(self) -> None:
        """THRESHOLD failures open it; after the cool-down it lets one probe through; a failed probe
        opens it again for twice as long; a success closes it."""
        now = datetime(2026, 1, 1, tzinfo=UTC)
        circuit = Circuit("http://r:80")
        opened = [circuit.failure(now, "HTTP 500") for _ in range(CIRCUIT_THRESHOLD)]
        assert opened == [False] * (CIRCUIT_THRESHOLD - 1) + [True]
        assert not circuit.allows(now) and circuit.open_until is not None
        first = circuit.open_until - now
        assert circuit.allows(circuit.open_until) and circuit.state == "half_open"
        assert circuit.failure(circuit.open_until, "HTTP 500")
        assert circuit.open_until is not None and circuit.open_until - (now + first) == 2 * first
        assert circuit.success() and circuit.state == "closed" and circuit.allows(now)

    def test_retry_after_lengthens_the_cool_down(self) -> None:
        """A receiver asking for an hour gets its hour (within the cap)."""
        now = datetime(2026, 1, 1, tzinfo=UTC)
        circuit = Circuit("http://r:80")
        for _ in range(CIRCUIT_THRESHOLD):
            circuit.failure(now, "HTTP 503", retry_after=600)
        assert circuit.open_until is not None and (circuit.open_until - now).total_seconds() >= 600


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


class TestSenderClient:
    def test_keep_alive_reuses_one_connection(self, settings: Settings, http_server: LoopbackServer) -> None:
        """Ten attempts to one receiver in a row share one TCP connection."""
        http_server.routes["/hook"] = Response(204)
        accepted = _accepted_connections(http_server)

        async def run() -> list[bool]:
            async with make_webhook_session(settings, total=8, per_origin=2) as session:
                sender = WebhookSender(session, settings.allowed_networks, 5.0)
                return [(await sender.post(http_server.url("/hook"), b"{}", {})).ok for _ in range(10)]

        assert asyncio.run(run()) == [True] * 10
        assert len(accepted) == 1

    @pytest.mark.parametrize("url", ["http://0177.0.0.1:99999/", "http://[::1/hook", "http:///hook"])
    def test_invalid_webhook_url_is_a_failed_attempt(self, settings: Settings, url: str) -> None:
        """A URL that cannot even be parsed fails the attempt with a clear error, not a crash."""

        async def run() -> str | None:
            async with make_webhook_session(settings, total=8, per_origin=2) as session:
                sender = WebhookSender(session, settings.allowed_networks, 5.0)
                return (await sender.post(url, b"{}", {})).error

        error = asyncio.run(run())
        assert error and "Traceback" not in error
