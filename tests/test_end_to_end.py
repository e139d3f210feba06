"""The whole path: loopback feeds -> poller -> RQ worker -> signed webhooks, on real Redis and SQLite."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from standardwebhooks.webhooks import Webhook

from app.demo import demo_feeds
from app.poller import poll_once
from app.runtime import Runtime
from ingest.alert.signature import new_secret
from ingest.models import Subscription, utcnow
from ingest.settings import Settings
from tests.alerting import deliver, work
from tests.conftest import LoopbackServer, RecordedRequest, Response

SECRET = new_secret()


@pytest.fixture()
def ctx(settings: Settings, redis_client: object) -> Iterator[Runtime]:
    """A worker/poller context on the test's Redis db and SQLite file."""
    context = Runtime(settings)
    yield context
    context.close()


def _serve_demo(server: LoopbackServer) -> list[str]:
    """Serve the bundled demo feeds with ETags; returns their URLs, the seed's feed first."""
    for path, body in demo_feeds().items():
        etag = f'"{hash(body) & 0xFFFFFFFF:x}"'

        def route(req: RecordedRequest, body: bytes = body, etag: str = etag) -> Response:
            if req.headers.get("If-None-Match") == etag:
                return Response(304, headers={"ETag": etag})
            return Response(200, body, {"Content-Type": "application/rss+xml", "ETag": etag})

        server.routes[path] = route
    return [server.url(path) for path in sorted(demo_feeds(), key=lambda p: "nakka" not in p)]


def _subscribe(ctx: Runtime, sub_id: str, query: str, webhook: str) -> None:
    ctx.store.add_subscription(
        Subscription(id=sub_id, name=sub_id, query=query, webhook=webhook, secret=SECRET, created_at=utcnow())
    )


def _hooks(server: LoopbackServer, path: str) -> list[RecordedRequest]:
    return [r for r in server.requests if r.path == path and r.method == "POST"]


def _drain(ctx: Runtime, until: float = 0.0) -> None:
    """Run a burst worker, then the sender, until nothing is left (and, if asked, for `until` seconds)."""
    deadline = time.monotonic() + until
    while True:
        work(ctx)
        deliver(ctx)
        if time.monotonic() >= deadline:
            return
        time.sleep(0.3)


@pytest.mark.slow
class TestEndToEnd:
    def test_one_alert_per_story_signed(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """The seed and its syndicated copy give one verified alert per matching subscription."""
        for url in _serve_demo(http_server):
            ctx.store.add_feed(url)
        http_server.routes["/hook"] = Response(204)
        _subscribe(ctx, "sub_armenia", "Armenia AND ceasefire", http_server.url("/hook"))
        _subscribe(ctx, "sub_trams", "Tbilisi AND trams", http_server.url("/hook"))
        _subscribe(ctx, "sub_none", "volcano", http_server.url("/hook"))

        summary = poll_once(ctx, only_due=False)
        assert summary.ok == 3 and summary.new == 5
        _drain(ctx)

        hooks = _hooks(http_server, "/hook")
        payloads = [
            Webhook(SECRET).verify(r.body, {k.lower(): v for k, v in r.headers.items()}) for r in hooks
        ]
        by_sub = sorted(p["data"]["subscription_id"] for p in payloads)
        assert by_sub == ["sub_armenia", "sub_trams"]
        alerted = next(
            p["data"]["article"] for p in payloads if p["data"]["subscription_id"] == "sub_armenia"
        )
        stored = ctx.store.list_articles(limit=50)
        assert len(stored) == 5
        seed = next(a for a in stored if "nakka" in a.feed_url and "Armenia" in a.title)
        assert seed.title == (
            "Russia: If the conflict moves to Asia, Russia will provide assistance to Armenia"
        )
        assert seed.language == "en"
        assert seed.text.startswith("China News Agency, Moscow, October 31")
        assert seed.text.endswith("in violation of the agreement.")
        assert "utm_" not in (seed.url or "")
        copies = [a for a in stored if a.story_id == seed.story_id]
        assert alerted["story_id"] == seed.story_id
        assert len(copies) == 2  # the original and the wire copy share one story

    def test_second_poll_is_conditional_and_quiet(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """An unchanged feed answers 304 to our conditional GET and nothing new is queued."""
        urls = _serve_demo(http_server)
        ctx.store.add_feed(urls[0])
        first = poll_once(ctx, only_due=False)
        second = poll_once(ctx, only_due=False)
        assert first.new > 0
        assert second.not_modified == 1 and second.new == 0 and second.jobs == 0
        assert "If-None-Match" in http_server.requests[-1].headers
        feed = ctx.store.list_feeds()[0]
        assert feed.last_success_at is not None and feed.consecutive_errors == 0

    def test_failing_receiver_is_retried_with_same_id(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """A receiver failing twice gets the alert on the third attempt, same webhook-id each time."""
        calls: list[RecordedRequest] = []

        def flaky(req: RecordedRequest) -> Response:
            calls.append(req)
            return Response(503 if len(calls) <= 2 else 200)

        urls = _serve_demo(http_server)
        ctx.store.add_feed(urls[0])
        http_server.routes["/flaky"] = flaky
        _subscribe(ctx, "sub_flaky", "Armenia", http_server.url("/flaky"))
        poll_once(ctx, only_due=False)
        deadline = time.monotonic() + 20
        while len(calls) < 3 and time.monotonic() < deadline:
            _drain(ctx, until=0.5)
        assert len(calls) == 3
        assert len({c.headers["webhook-id"] for c in calls}) == 1
        assert len({c.headers["webhook-timestamp"] + c.headers["webhook-signature"] for c in calls}) >= 2
        alert = ctx.store.list_alerts()[0]
        assert alert.status == "delivered" and alert.attempts == 3

    def test_job_run_twice_sends_once(self, ctx: Runtime, http_server: LoopbackServer) -> None:
        """Re-running a processed batch's entries stores nothing new and alerts nobody again."""
        from ingest.models import RawEntry

        urls = _serve_demo(http_server)
        ctx.store.add_feed(urls[0])
        http_server.routes["/hook"] = Response(204)
        _subscribe(ctx, "sub_a", "Armenia", http_server.url("/hook"))
        poll_once(ctx, only_due=False)
        queue = ctx.batch_queue.queue
        job = queue.jobs[0]
        batch = ctx.store.get_batch(job.args[0])
        assert batch is not None
        entries = batch.entries
        _drain(ctx)
        again = ctx.pipeline.process([RawEntry.from_dict(e) for e in entries])
        _drain(ctx)
        assert again.stored == [] and again.alerts == []
        assert len(_hooks(http_server, "/hook")) == 1

    def test_cli_articles_json_lines(
        self,
        ctx: Runtime,
        http_server: LoopbackServer,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """`ingest articles list --json` prints one webhook-shaped article per line."""
        from app.cli import main

        urls = _serve_demo(http_server)
        ctx.store.add_feed(urls[0])
        poll_once(ctx, only_due=False)
        _drain(ctx)
        capsys.readouterr()
        monkeypatch.setenv("INGEST_DATA_DIR", str(ctx.settings.data_dir))
        monkeypatch.setenv("REDIS_URL", ctx.settings.redis_url or "")
        assert main(["articles", "list", "--json"]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert len(lines) == 2
        assert {"id", "url", "title", "text", "language", "story_id", "feed_url"} <= set(lines[0])

    def test_paused_subscription_gets_its_matches_on_resume(
        self, ctx: Runtime, http_server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Stories matched while a subscription is paused wait in the outbox and arrive on resume."""
        from app.cli import main

        urls = _serve_demo(http_server)
        ctx.store.add_feed(urls[0])
        http_server.routes["/hook"] = Response(204)
        _subscribe(ctx, "sub_p", "Armenia", http_server.url("/hook"))
        ctx.store.set_subscription_status("sub_p", "paused", "test")
        poll_once(ctx, only_due=False)
        _drain(ctx)
        assert _hooks(http_server, "/hook") == []
        assert [a.status for a in ctx.store.list_alerts()] == ["pending"]
        monkeypatch.setenv("INGEST_DATA_DIR", str(ctx.settings.data_dir))
        monkeypatch.setenv("REDIS_URL", ctx.settings.redis_url or "")
        monkeypatch.setenv("INGEST_ALLOWED_NETWORKS", "127.0.0.0/8")
        assert main(["subs", "resume", "sub_p"]) == 0  # the CLI's context now serves the jobs
        _drain(ctx)
        assert len(_hooks(http_server, "/hook")) == 1

    def test_full_text_feed_is_completed_from_the_page(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """A full-text feed's one-line entry is stored with the body, author and date of its page."""
        from pathlib import Path

        page = (Path(__file__).parent / "fixtures" / "pages" / "harbour_article.html").read_bytes()
        http_server.routes["/news/harbour"] = Response(200, page, {"Content-Type": "text/html"})
        link = http_server.url("/news/harbour")
        http_server.routes["/short.xml"] = Response(
            200,
            (
                '<?xml version="1.0"?><rss version="2.0"><channel><title>Coastline Courier</title>'
                f"<item><title>Harbour cranes return</title><link>{link}</link><guid>h1</guid>"
                "<description>Cranes are moving again.</description></item></channel></rss>"
            ).encode(),
            {"Content-Type": "application/rss+xml"},
        )
        ctx.store.add_feed(http_server.url("/short.xml"), fulltext=True)
        poll_once(ctx, only_due=False)
        _drain(ctx)
        [article] = ctx.store.list_articles()
        assert len(article.text.split()) > 120
        assert "container cranes" in article.text
        assert article.summary == "Cranes are moving again."
        assert article.author == "Maren Tollefsen"
        assert article.published_at is not None and article.published_at.year == 2024
