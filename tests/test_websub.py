"""WebSub: a loopback hub, the callback routes served by uvicorn on loopback, real Redis and SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from app.api.websub import websub_routes
from app.poller import poll_once
from app.runtime import Runtime
from ingest.feeds.websub import needs_subscription, sign, verify_signature
from ingest.models import WebSubSubscription, utcnow
from ingest.settings import Settings
from tests.conftest import LoopbackServer, RecordedRequest, Response, free_port

RSS = "application/rss+xml"


def feed_doc(hub: str, self_url: str, *guids: str) -> bytes:
    items = "".join(
        f"<item><guid>{g}</guid><title>Item {g}</title><description>body {g}</description></item>"
        for g in guids
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
        f'<title>Pushed</title><atom:link rel="hub" href="{hub}"/>'
        f'<atom:link rel="self" href="{self_url}"/>'
        f"{items}</channel></rss>"
    ).encode()


class Hub:
    """A loopback hub: answers 202 to a subscription, then verifies intent from a thread."""

    def __init__(self, server: LoopbackServer, lease: int = 3600) -> None:
        self.server, self.lease = server, lease
        self.requests: list[dict[str, str]] = []
        self.verifications: list[httpx.Response] = []
        self.threads: list[threading.Thread] = []
        server.routes["/hub"] = self.handle

    @property
    def url(self) -> str:
        return self.server.url("/hub")

    def handle(self, req: RecordedRequest) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        self.requests.append(form)
        thread = threading.Thread(target=self.verify, args=(form,))
        self.threads.append(thread)
        thread.start()
        return Response(202)

    def verify(self, form: dict[str, str], challenge: str = "c-12345") -> None:
        params = {
            "hub.mode": form["hub.mode"],
            "hub.topic": form["hub.topic"],
            "hub.challenge": challenge,
            "hub.lease_seconds": str(self.lease),
        }
        self.verifications.append(httpx.get(form["hub.callback"], params=params, timeout=10))

    def wait(self) -> None:
        for thread in self.threads:
            thread.join(10)


@pytest.fixture()
def served(settings: Settings, redis_client: object) -> Iterator[Callable[..., Runtime]]:
    """Starts uvicorn on loopback with the WebSub routes of a context whose public URL points at it."""
    started: list[tuple[uvicorn.Server, threading.Thread, Runtime]] = []

    def start(**changes: object) -> Runtime:
        port = free_port()
        ctx = Runtime(settings.replace(public_url=f"http://127.0.0.1:{port}", **changes))
        server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=websub_routes(ctx.store, ctx.settings, ctx.intake.accept)),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        started.append((server, thread, ctx))
        return ctx

    yield start
    for server, thread, ctx in started:
        server.should_exit = True
        thread.join(10)
        ctx.close()


def _subscribed(ctx: Runtime, http_server: LoopbackServer, hub: Hub) -> tuple[int, str]:
    feed_url = http_server.url("/feed")
    http_server.routes["/feed"] = Response(200, feed_doc(hub.url, feed_url, "1"), {"Content-Type": RSS})
    feed = ctx.store.add_feed(feed_url)
    poll_once(ctx, only_due=False)
    hub.wait()
    return feed.id, feed_url


def test_subscribes_and_verifies_intent(served: Callable[..., Runtime], http_server: LoopbackServer) -> None:
    """A feed advertising a hub is subscribed; the hub's challenge is echoed and the lease recorded."""
    ctx = served()
    hub = Hub(http_server)
    feed_id, feed_url = _subscribed(ctx, http_server, hub)
    [form] = hub.requests
    assert form["hub.mode"] == "subscribe" and form["hub.topic"] == feed_url
    assert form["hub.callback"] == f"{ctx.settings.public_url}/websub/{feed_id}"
    assert len(form["hub.secret"]) == 64 and form["hub.lease_seconds"] == "864000"
    [answer] = hub.verifications
    assert (answer.status_code, answer.text) == (200, "c-12345")
    sub = ctx.store.get_websub(feed_id)
    assert sub and sub.state == "active" and sub.lease_until
    assert timedelta(minutes=59) < sub.lease_until - utcnow() <= timedelta(hours=1)


def test_signed_push_is_queued_like_a_poll(
    served: Callable[..., Runtime], http_server: LoopbackServer
) -> None:
    """A correctly signed push queues only its new entries; the next poll finds nothing new."""
    ctx = served()
    hub = Hub(http_server)
    feed_id, feed_url = _subscribed(ctx, http_server, hub)
    secret = hub.requests[0]["hub.secret"]
    body = feed_doc(hub.url, feed_url, "1", "2")
    answer = httpx.post(
        f"{ctx.settings.public_url}/websub/{feed_id}",
        content=body,
        headers={"Content-Type": RSS, "X-Hub-Signature": sign(secret, body)},
    )
    assert answer.status_code == 202
    batches = [ctx.store.get_batch(j.args[0]) for j in ctx.batch_queue.queue.jobs]
    queued = [e["entry_key"] for b in batches if b is not None for e in b.entries]
    assert queued == ["guid:1", "guid:2"]
    http_server.routes["/feed"] = Response(200, body, {"Content-Type": RSS})
    assert poll_once(ctx, only_due=False).new == 0


@pytest.mark.parametrize("signature", [None, "sha256=00", "md5=abc", "garbage"])
def test_badly_signed_push_is_acknowledged_and_dropped(
    served: Callable[..., Runtime], http_server: LoopbackServer, signature: str | None
) -> None:
    """Missing or wrong X-Hub-Signature: 2xx as the spec asks, nothing queued."""
    ctx = served()
    hub = Hub(http_server)
    feed_id, feed_url = _subscribed(ctx, http_server, hub)
    jobs_before = len(ctx.batch_queue.queue.jobs)
    headers = {"Content-Type": RSS, **({"X-Hub-Signature": signature} if signature else {})}
    answer = httpx.post(
        f"{ctx.settings.public_url}/websub/{feed_id}",
        content=feed_doc(hub.url, feed_url, "9"),
        headers=headers,
    )
    assert answer.status_code == 202 and answer.text == "ignored"
    assert len(ctx.batch_queue.queue.jobs) == jobs_before


def test_oversized_push_is_refused(served: Callable[..., Runtime], http_server: LoopbackServer) -> None:
    """A push larger than INGEST_MAX_BODY_BYTES is refused with 413."""
    ctx = served(max_body_bytes=2000)
    hub = Hub(http_server)
    feed_id, _ = _subscribed(ctx, http_server, hub)
    answer = httpx.post(f"{ctx.settings.public_url}/websub/{feed_id}", content=b"<rss>" + b"x" * 5000)
    assert answer.status_code == 413


def test_verification_for_unknown_topic_or_feed_is_refused(
    served: Callable[..., Runtime], http_server: LoopbackServer
) -> None:
    """A hub (or anyone) confirming a subscription we did not ask for gets 404."""
    ctx = served()
    hub = Hub(http_server)
    feed_id, _ = _subscribed(ctx, http_server, hub)
    base = f"{ctx.settings.public_url}/websub"
    params = {"hub.mode": "subscribe", "hub.topic": "http://evil.example/", "hub.challenge": "x"}
    assert httpx.get(f"{base}/{feed_id}", params=params).status_code == 404
    assert httpx.get(f"{base}/999", params=params).status_code == 404
    assert httpx.post(f"{base}/999", content=b"x").status_code == 410


def test_denial_is_recorded(served: Callable[..., Runtime], http_server: LoopbackServer) -> None:
    """hub.mode=denied marks the subscription denied with the hub's reason."""
    ctx = served()
    hub = Hub(http_server)
    feed_id, feed_url = _subscribed(ctx, http_server, hub)
    params = {"hub.mode": "denied", "hub.topic": feed_url, "hub.reason": "quota"}
    assert httpx.get(f"{ctx.settings.public_url}/websub/{feed_id}", params=params).status_code == 200
    sub = ctx.store.get_websub(feed_id)
    assert sub and sub.state == "denied" and sub.last_error == "hub denied: quota"


def test_active_push_slows_polling_and_lease_is_renewed(
    served: Callable[..., Runtime], http_server: LoopbackServer
) -> None:
    """While pushed, the feed is polled at the fallback interval; near its end the lease is renewed."""
    ctx = served()
    hub = Hub(http_server)
    feed_id, _ = _subscribed(ctx, http_server, hub)
    poll_once(ctx, only_due=False)
    feed = ctx.store.get_feed(feed_id)
    assert "WebSub push active" in (feed.schedule_reason or "")
    assert len(hub.requests) == 1  # a fresh lease is not renewed
    sub = ctx.store.get_websub(feed_id)
    assert sub is not None
    expiring = utcnow() + timedelta(minutes=5)
    ctx.store.save_websub(WebSubSubscription(**{**sub.__dict__, "lease_until": expiring}))
    poll_once(ctx, only_due=False)
    hub.wait()
    assert len(hub.requests) == 2 and hub.requests[1]["hub.secret"] == hub.requests[0]["hub.secret"]
    renewed = ctx.store.get_websub(feed_id)
    assert renewed and renewed.state == "active" and renewed.lease_until
    assert renewed.lease_until - utcnow() > timedelta(minutes=59)


def test_no_public_url_no_subscription(
    settings: Settings, redis_client: object, http_server: LoopbackServer
) -> None:
    """Without INGEST_PUBLIC_URL the hub is never contacted; polling goes on."""
    ctx = Runtime(settings)
    try:
        hub = Hub(http_server)
        http_server.routes["/feed"] = Response(
            200, feed_doc(hub.url, http_server.url("/feed"), "1"), {"Content-Type": RSS}
        )
        ctx.store.add_feed(http_server.url("/feed"))
        assert poll_once(ctx, only_due=False).new == 1
        assert hub.requests == []
    finally:
        ctx.close()


def test_hub_failure_is_recorded(served: Callable[..., Runtime], http_server: LoopbackServer) -> None:
    """A hub answering 500 leaves the subscription failed with the reason; polling is unaffected."""
    ctx = served()
    http_server.routes["/hub"] = Response(500, b"down")
    feed_url = http_server.url("/feed")
    http_server.routes["/feed"] = Response(
        200, feed_doc(http_server.url("/hub"), feed_url, "1"), {"Content-Type": RSS}
    )
    feed = ctx.store.add_feed(feed_url)
    assert poll_once(ctx, only_due=False).ok == 1
    sub = ctx.store.get_websub(feed.id)
    assert sub and sub.state == "failed" and sub.last_error == "hub answered HTTP 500"


def test_signature_algorithms() -> None:
    """sha1 and sha256 signatures verify; a wrong key or digest does not."""
    body = b"<feed/>"
    for algorithm in ("sha1", "sha256", "sha512"):
        assert verify_signature("k", body, sign("k", body, algorithm))
        assert not verify_signature("other", body, sign("k", body, algorithm))
    assert not verify_signature("k", body, None)


def test_needs_subscription_rules() -> None:
    """New, moved, expiring, or long-pending subscriptions are (re)requested; fresh ones are not."""
    now = utcnow()
    sub = WebSubSubscription(
        feed_id=1,
        hub="https://hub/",
        topic="https://t/",
        secret="s",
        state="active",
        lease_until=now + timedelta(days=5),
        lease_seconds=5 * 86400,
        updated_at=now,
    )
    assert needs_subscription(None, "https://hub/", "https://t/", now)
    assert not needs_subscription(sub, "https://hub/", "https://t/", now)
    assert needs_subscription(sub, "https://other-hub/", "https://t/", now)
    assert needs_subscription(sub, "https://hub/", "https://t/", now + timedelta(days=4, hours=1))
    pending = WebSubSubscription(**{**sub.__dict__, "state": "pending"})
    assert not needs_subscription(pending, "https://hub/", "https://t/", now + timedelta(minutes=5))
    assert needs_subscription(pending, "https://hub/", "https://t/", now + timedelta(hours=2))
