"""The poller against misbehaving loopback servers, real Redis and real SQLite."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from app.poller import host_key, poll_once
from app.runtime import Runtime
from ingest.models import Feed, utcnow
from ingest.services.refresh import MOVE_AFTER
from ingest.settings import Settings
from tests.conftest import FIXTURES, LoopbackServer, RecordedRequest, Response

RSS = "application/rss+xml"


def rss(*items: tuple[str, str, str], extra: str = "") -> bytes:
    """An RSS 2.0 document of (guid, title, body) items."""
    body = "".join(
        f'<item><guid isPermaLink="false">{g}</guid><title>{t}</title><description>{d}</description></item>'
        for g, t, d in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>{extra}'
        f"{body}</channel></rss>"
    ).encode()


FEED = rss(("a", "Alpha", "alpha body"), ("b", "Beta", "beta body"))


@pytest.fixture()
def make_ctx(settings: Settings, redis_client: object) -> Iterator[Callable[..., Runtime]]:
    """Builds the process context on the test's Redis db and SQLite file, with settings changes."""
    made: list[Runtime] = []

    def build(**changes: object) -> Runtime:
        ctx = Runtime(settings.replace(**changes) if changes else settings)
        made.append(ctx)
        return ctx

    yield build
    for ctx in made:
        ctx.close()


@pytest.fixture()
def ctx(make_ctx: Callable[..., Runtime]) -> Runtime:
    """The default context."""
    return make_ctx()


def only(ctx: Runtime) -> Feed:
    [feed] = ctx.store.list_feeds()
    return feed


def test_304_keeps_the_feed_healthy_and_scheduled(ctx: Runtime, http_server: LoopbackServer) -> None:
    """A second poll is conditional; a 304 is a success with a next poll and a reason."""

    def route(req: RecordedRequest) -> Response:
        if req.headers.get("If-None-Match") == '"v1"':
            return Response(304, headers={"ETag": '"v1"'})
        return Response(200, FEED, {"Content-Type": RSS, "ETag": '"v1"'})

    http_server.routes["/f"] = route
    ctx.store.add_feed(http_server.url("/f"))
    first = poll_once(ctx, only_due=False)
    second = poll_once(ctx, only_due=False)
    assert (first.ok, first.new, second.not_modified, second.new) == (1, 2, 1, 0)
    feed = only(ctx)
    assert feed.last_error is None and feed.consecutive_errors == 0 and feed.last_status == 304
    assert feed.next_poll_at and feed.next_poll_at > utcnow()
    assert feed.schedule_interval and "default interval" in (feed.schedule_reason or "")


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(ctx: Runtime, http_server: LoopbackServer, status: int) -> None:
    """429 and 503 with Retry-After: 7200 put the next poll at least two hours away."""
    http_server.routes["/f"] = Response(status, b"slow down", {"Retry-After": "7200"})
    ctx.store.add_feed(http_server.url("/f"))
    before = utcnow()
    poll_once(ctx, only_due=False)
    feed = only(ctx)
    assert feed.next_poll_at and feed.next_poll_at >= before + timedelta(seconds=7200)
    assert feed.last_error and feed.last_error.startswith(f"HTTP {status}")
    assert feed.schedule_reason == "server asks Retry-After 2h"
    assert feed.status == "active" and feed.consecutive_errors == 1


def test_backoff_grows_is_capped_and_never_disables(ctx: Runtime, http_server: LoopbackServer) -> None:
    """A feed failing 40 times in a row backs off to at most a day and stays active."""
    http_server.routes["/f"] = Response(500, b"boom")
    ctx.store.add_feed(http_server.url("/f"))
    intervals = []
    for _ in range(4):
        poll_once(ctx, only_due=False)
        intervals.append(only(ctx).schedule_interval or 0)
    assert intervals == sorted(intervals) and intervals[-1] > intervals[0] * 4
    ctx.store.record_fetch(Feed(**{**only(ctx).__dict__, "consecutive_errors": 39}))
    poll_once(ctx, only_due=False)
    feed = only(ctx)
    assert feed.status == "active" and feed.consecutive_errors == 40
    assert feed.last_error == "HTTP 500 Internal Server Error"
    assert 0 < (feed.schedule_interval or 0) <= 86400
    assert "backoff after 40 consecutive errors" in (feed.schedule_reason or "")


def test_410_mutes_until_enabled(ctx: Runtime, http_server: LoopbackServer) -> None:
    """410 Gone stops polling with a reason; enabling makes the feed due again."""
    http_server.routes["/f"] = Response(410, b"gone")
    feed = ctx.store.add_feed(http_server.url("/f"))
    poll_once(ctx, only_due=False)
    muted = only(ctx)
    assert muted.status == "gone" and muted.next_poll_at is None
    assert muted.muted_reason and "410 Gone" in muted.muted_reason and "feeds enable" in muted.muted_reason
    assert ctx.store.due_feeds(utcnow() + timedelta(days=30)) == []
    assert poll_once(ctx, only_due=False).feeds == 0
    ctx.store.set_feed_status(feed.id, "active")
    assert [f.id for f in ctx.store.due_feeds(utcnow())] == [feed.id]


def test_permanent_redirect_moves_the_feed_after_three_polls(
    ctx: Runtime, http_server: LoopbackServer
) -> None:
    """A 301 seen on three consecutive polls moves the feed; its seen entries stay."""
    http_server.routes["/old"] = Response(301, headers={"Location": "/new"})
    http_server.routes["/new"] = Response(200, FEED, {"Content-Type": RSS})
    old = http_server.url("/old")
    ctx.store.add_feed(old)
    counts = []
    for _ in range(MOVE_AFTER - 1):
        poll_once(ctx, only_due=False)
        counts.append((only(ctx).url, only(ctx).redirect_count))
    assert counts == [(old, 1), (old, 2)]
    poll_once(ctx, only_due=False)
    moved = only(ctx)
    assert moved.url == http_server.url("/new") and moved.previous_urls == (old,)
    assert moved.redirect_url is None and moved.redirect_count == 0
    assert poll_once(ctx, only_due=False).new == 0  # history kept: nothing is new again
    assert http_server.requests[-1].path == "/new"


def test_temporary_redirect_never_moves_the_feed(ctx: Runtime, http_server: LoopbackServer) -> None:
    """302 and 307 are followed every time, and the feed keeps its URL."""
    http_server.routes["/a"] = Response(302, headers={"Location": "/b"})
    http_server.routes["/b"] = Response(307, headers={"Location": "/c"})
    http_server.routes["/c"] = Response(200, FEED, {"Content-Type": RSS})
    ctx.store.add_feed(http_server.url("/a"))
    for _ in range(MOVE_AFTER + 1):
        assert poll_once(ctx, only_due=False).ok == 1
    feed = only(ctx)
    assert feed.url == http_server.url("/a") and feed.redirect_count == 0


def test_interrupted_permanent_redirect_starts_counting_again(
    ctx: Runtime, http_server: LoopbackServer
) -> None:
    """Two 301 polls, then a direct answer: the count is back to zero."""
    state = {"redirect": True}

    def route(req: RecordedRequest) -> Response:
        if state["redirect"]:
            return Response(308, headers={"Location": "/new"})
        return Response(200, FEED, {"Content-Type": RSS})

    http_server.routes["/old"] = route
    http_server.routes["/new"] = Response(200, FEED, {"Content-Type": RSS})
    ctx.store.add_feed(http_server.url("/old"))
    poll_once(ctx, only_due=False)
    poll_once(ctx, only_due=False)
    state["redirect"] = False
    poll_once(ctx, only_due=False)
    feed = only(ctx)
    assert feed.url == http_server.url("/old") and feed.redirect_count == 0 and feed.redirect_url is None


def test_changed_entry_is_queued_again_as_an_update(ctx: Runtime, http_server: LoopbackServer) -> None:
    """An entry whose content changes reaches the worker again and updates its article."""
    body = {"doc": rss(("a", "Alpha", "<p>Armenia ceasefire talks begin in Moscow today.</p>"))}
    http_server.routes["/f"] = lambda req: Response(200, body["doc"], {"Content-Type": RSS})
    ctx.store.add_feed(http_server.url("/f"))
    assert poll_once(ctx, only_due=False).new == 1
    assert poll_once(ctx, only_due=False).new == 0
    body["doc"] = rss(("a", "Alpha", "<p>Armenia ceasefire talks collapse in Moscow tonight.</p>"))
    changed = poll_once(ctx, only_due=False)
    assert (changed.new, changed.updated, changed.jobs) == (0, 1, 1)
    jobs = ctx.batch_queue.queue.jobs
    assert [len(ctx.store.get_batch(j.args[0]).entries) for j in jobs] == [1, 1]  # type: ignore[union-attr]
    first, second = (ctx.batch_runner.run(j.args[0]) for j in jobs)
    assert first["stored"] == 1 and second["updated"] == 1 and second["stored"] == 0
    [article] = ctx.store.list_articles()
    assert article.updated and "collapse" in article.text and article.language == "en"
    assert poll_once(ctx, only_due=False).updated == 0


def test_unchanged_entry_is_not_language_tagged_again(ctx: Runtime, http_server: LoopbackServer) -> None:
    """A batch run again (a retry) is recognised as unchanged from its cleaned text alone."""
    from ingest.models import RawEntry

    http_server.routes["/f"] = Response(
        200, rss(("a", "Alpha", "<p>Armenia ceasefire talks begin.</p>")), {"Content-Type": RSS}
    )
    ctx.store.add_feed(http_server.url("/f"))
    poll_once(ctx, only_due=False)
    [job] = ctx.batch_queue.queue.jobs
    batch = ctx.store.get_batch(job.args[0])
    assert batch is not None
    entries = [RawEntry.from_dict(e) for e in batch.entries]
    assert len(ctx.pipeline.process(entries).stored) == 1
    detector = ctx.pipeline.preparer.detector
    calls: list[str] = []
    original = detector.detect
    detector.detect = lambda text, **kw: calls.append(text) or original(text, **kw)  # type: ignore[method-assign]
    again = ctx.pipeline.process(entries)
    assert (len(again.stored), again.unchanged, calls) == (0, 1, [])


def test_duplicate_and_missing_guids_are_each_queued_once(ctx: Runtime, http_server: LoopbackServer) -> None:
    """A feed repeating or omitting guids yields every entry once, and nothing on the next poll."""
    http_server.routes["/f"] = Response(
        200, (FIXTURES / "feeds" / "duplicate_guids.xml").read_bytes(), {"Content-Type": RSS}
    )
    ctx.store.add_feed(http_server.url("/f"))
    first = poll_once(ctx, only_due=False)
    assert (first.entries, first.new) == (5, 5)
    batches = [ctx.store.get_batch(j.args[0]) for j in ctx.batch_queue.queue.jobs]
    keys = {e["entry_key"] for b in batches if b is not None for e in b.entries}
    assert len(keys) == 5 and "guid:unique-3" in keys
    assert poll_once(ctx, only_due=False).new == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", "text/html", ""])
def test_wrong_content_type_still_parses(
    ctx: Runtime, http_server: LoopbackServer, content_type: str
) -> None:
    """A feed served with a wrong or missing Content-Type is still read."""
    http_server.routes["/f"] = Response(200, FEED, {"Content-Type": content_type} if content_type else {})
    ctx.store.add_feed(http_server.url("/f"))
    assert poll_once(ctx, only_due=False).new == 2


def _hang(req: RecordedRequest) -> Response:
    threading.Event().wait(5)
    return Response(200, FEED)


@pytest.mark.parametrize(
    ("route", "url", "expected"),
    [
        (
            Response(200, b"<!doctype html><html><body>hi</body></html>", {"Content-Type": "text/html"}),
            None,
            "not a feed: looks like an HTML page",
        ),
        (Response(200, b"x" * 5000, {"Content-Type": RSS}), None, "body larger than 1000 bytes"),
        (
            Response(302, headers={"Location": "http://10.1.2.3/feed"}),
            None,
            "refused: resolves to private address 10.1.2.3 (redirected to http://10.1.2.3/feed)",
        ),
        (_hang, None, "timed out after 1s"),
        (None, "http://no-such-host.invalid/feed", "DNS lookup failed for host no-such-host.invalid"),
        (Response(404, b"no"), None, "HTTP 404 Not Found"),
    ],
)
def test_errors_are_recorded_in_plain_words(
    make_ctx: Callable[..., Runtime],
    http_server: LoopbackServer,
    route: object,
    url: str | None,
    expected: str,
) -> None:
    """Not a feed, too large, private redirect, timeout, DNS, HTTP status: each a clear last_error."""
    ctx = make_ctx(max_body_bytes=1000, fetch_timeout=1.0)
    if route is not None:
        http_server.routes["/f"] = route  # type: ignore[assignment]
    ctx.store.add_feed(url or http_server.url("/f"))
    assert poll_once(ctx, only_due=False).errors == 1
    feed = only(ctx)
    assert feed.last_error == expected
    assert feed.status == "active" and feed.next_poll_at is not None


class GateServer:
    """A loopback server on another address whose responses wait for `gate`; counts concurrency."""

    def __init__(self, host: str) -> None:
        self.gate = threading.Event()
        self.active = self.max_active = self.served = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with owner.lock:
                    owner.active += 1
                    owner.max_active = max(owner.max_active, owner.active)
                owner.gate.wait(60)
                with owner.lock:
                    owner.active -= 1
                    owner.served += 1
                self.send_response(200)
                self.send_header("Content-Type", RSS)
                self.send_header("Content-Length", str(len(FEED)))
                self.end_headers()
                self.wfile.write(FEED)

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_slow_host_does_not_delay_other_hosts(
    make_ctx: Callable[..., Runtime], http_server: LoopbackServer
) -> None:
    """With a stalled host holding its per-host slots, every feed of another host is polled meanwhile."""
    ctx = make_ctx(fetch_concurrency=4, fetch_per_host=2, fetch_timeout=60.0)
    slow = GateServer("127.0.0.2")
    try:
        slow_ids = [ctx.store.add_feed(f"http://127.0.0.2:{slow.port}/s{i}").id for i in range(6)]
        http_server.routes.update({f"/f{i}": Response(200, FEED, {"Content-Type": RSS}) for i in range(10)})
        fast_ids = [ctx.store.add_feed(http_server.url(f"/f{i}")).id for i in range(10)]
        poller = threading.Thread(target=poll_once, args=(ctx,), kwargs={"only_due": False})
        poller.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            ctx.store.get_feed(i).last_success_at for i in fast_ids
        ):
            time.sleep(0.05)
        fast_done = all(ctx.store.get_feed(i).last_success_at for i in fast_ids)
        slow_served_meanwhile = slow.served
        slow.gate.set()
        poller.join(60)
        assert fast_done and slow_served_meanwhile == 0
        assert 0 < slow.max_active <= 2  # the per-host limit
        assert all(ctx.store.get_feed(i).last_success_at for i in slow_ids)
    finally:
        slow.close()


def test_host_key_ignores_port_and_case() -> None:
    """Two ports of one host share the per-host limit."""
    assert host_key("http://Example.COM:8080/a") == host_key("https://example.com/b") == "example.com"
