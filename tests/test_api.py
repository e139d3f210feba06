"""The HTTP API, served by uvicorn on loopback, against SQLite and PostgreSQL and the test Redis."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
import uvicorn
from rq import Queue
from rq.serializers import JSONSerializer

from app.api import create_app, deps_from_runtime
from app.runtime import Runtime
from ingest.models import Alert, Article
from ingest.settings import Settings
from ingest.store.base import Store
from ingest.store.postgres import PostgresStore
from ingest.store.sqlite import SQLiteStore
from tests.conftest import LoopbackServer, free_port

TOKEN = "test-token-0123456789"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="  # 32 bytes


@dataclass
class Api:
    """A running API: its base URL, an authenticated client, the store behind it, its settings."""

    url: str
    client: httpx.Client
    store: Store
    settings: Settings

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.client.post(path, json=json, **kw)


@contextmanager
def serve(settings: Settings, token: str | None) -> Iterator[str]:
    """uvicorn in a thread on a free loopback port, over a Runtime built from `settings`."""
    ctx = Runtime(settings)
    app = create_app(deps_from_runtime(ctx), token=token)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
        ctx.close()


def database_url(store: Store) -> str:
    if isinstance(store, SQLiteStore):
        return f"sqlite:///{store.path}"
    assert isinstance(store, PostgresStore)
    return store.url


def running_api(store: Store, settings: Settings) -> Iterator[Api]:
    """The API over `store`'s database with a token, and a client that sends it."""
    configured = settings.replace(database_url=database_url(store), api_token=TOKEN)
    with (
        serve(configured, TOKEN) as url,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        yield Api(url, client, store, configured)


@pytest.fixture()
def api(store: Store, settings: Settings, redis_client: redis.Redis) -> Iterator[Api]:
    """The API over the `store` fixture's database (SQLite, then PostgreSQL) with a token."""
    yield from running_api(store, settings)


def art(
    n: int, *, story: str | None = None, language: str = "en", feed_id: int = 1, text: str | None = None
) -> Article:
    return Article(
        id=f"art_{n}",
        feed_id=feed_id,
        feed_url=f"https://feed{feed_id}.example/rss",
        entry_key=f"k{n}",
        url=f"https://news.example/{n}",
        title=f"Title {n}",
        text=text or f"Body of article number {n}.",
        summary=None,
        language=language,
        language_confidence=0.9,
        published_at=T0,
        story_id=story or f"art_{n}",
        content_hash=f"h{n}",
        fetched_at=T0 + timedelta(minutes=n),
    )


def new_sub(api: Api, hook: str, **extra: Any) -> dict[str, Any]:
    resp = api.post(
        "/subscriptions", {"name": "karabakh", "query": "Armenia AND ceasefire", "webhook": hook, **extra}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]  # type: ignore[no-any-return]


# -- auth ---------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401_on_every_resource(api: Api) -> None:
    """Without the right bearer token every resource but health answers 401 with a JSON error."""
    for path in (
        "/feeds",
        "/subscriptions",
        "/articles",
        "/alerts",
        "/metrics",
        "/openapi.json",
        "/stories/x",
        "/no-such-path",
    ):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            resp = httpx.get(api.url + path, headers=headers)
            assert error(resp, 401)["code"] == "unauthorized"
            assert resp.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(api.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(api.url + "/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "database": "ok"}


def test_metrics_public_setting_opens_only_metrics(
    store: Store, settings: Settings, redis_client: redis.Redis
) -> None:
    """INGEST_METRICS_PUBLIC=1 serves /metrics without a token; other resources still need one."""
    configured = settings.replace(database_url=database_url(store), metrics_public=True)
    with serve(configured, TOKEN) as url:
        assert httpx.get(url + "/metrics").status_code == 200
        assert httpx.get(url + "/feeds").status_code == 401


def test_readyz_names_an_unreachable_redis(store: Store, settings: Settings) -> None:
    """With Redis unreachable, /readyz answers 503 naming redis, while the database is ok."""
    configured = settings.replace(
        database_url=database_url(store), redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    with serve(configured, TOKEN) as url:
        resp = httpx.get(url + "/readyz")
        assert resp.status_code == 503
        assert resp.json()["checks"]["database"] == "ok" and resp.json()["checks"]["redis"] != "ok"


# -- feeds --------------------------------------------------------------------------


def test_feeds_add_list_state_remove(api: Api, http_server: LoopbackServer) -> None:
    """A feed is added (201), listed, shown with its state, refused twice (409) and removed (204)."""
    url = http_server.url("/rss")
    resp = api.post("/feeds", {"url": url, "interval": 300})
    assert resp.status_code == 201
    feed = resp.json()
    assert feed["url"] == url and feed["interval"] == 300 and feed["status"] == "active"
    assert error(api.post("/feeds", {"url": url}), 409)["code"] == "conflict"
    assert [f["id"] for f in api.get("/feeds").json()["items"]] == [feed["id"]]
    state = api.get(f"/feeds/{feed['id']}").json()
    assert state["consecutive_errors"] == 0 and state["last_success_at"] is None
    assert api.client.delete(f"/feeds/{feed['id']}").status_code == 204
    assert error(api.get(f"/feeds/{feed['id']}"), 404)["code"] == "not_found"
    assert error(api.client.delete(f"/feeds/{feed['id']}"), 404)["code"] == "not_found"


def test_feed_bad_input(api: Api) -> None:
    """Private URLs, short intervals, unknown fields and a missing url are 422 naming the field."""
    assert error(api.post("/feeds", {"url": "http://10.1.2.3/rss"}), 422)["field"] == "url"
    assert error(api.post("/feeds", {"url": "ftp://a.example/rss"}), 422)["field"] == "url"
    short = {"url": "https://a.example/rss", "interval": 5}
    assert error(api.post("/feeds", short), 422)["field"] == "interval"
    assert error(api.post("/feeds", {"url": "https://a.example/rss", "x": 1}), 422)["field"] == "x"
    assert error(api.post("/feeds", {}), 422)["field"] == "url"
    assert error(api.get("/feeds/99999999999999999999999"), 404)["code"] == "not_found"


def test_feeds_pagination_walks_every_feed_once(api: Api) -> None:
    """Following next_cursor with limit=2 visits five feeds once each, in id order."""
    ids = [api.store.add_feed(f"https://f{n}.example/rss").id for n in range(5)]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = api.get("/feeds", params=params).json()
        assert len(body["items"]) <= 2
        seen += [f["id"] for f in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


# -- subscriptions ------------------------------------------------------------------


def test_subscription_lifecycle(api: Api, http_server: LoopbackServer) -> None:
    """Add (secret shown once), get, list, update, pause, duplicate 409, remove."""
    hook = http_server.url("/hook")
    created = new_sub(api, hook)
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    sub_id = created["id"]
    shown = api.get(f"/subscriptions/{sub_id}").json()
    assert "secret" not in shown and shown["query"] == "Armenia AND ceasefire"
    assert [s["id"] for s in api.get("/subscriptions").json()["items"]] == [sub_id]
    assert (
        error(api.post("/subscriptions", {"query": "Armenia AND ceasefire", "webhook": hook}), 409)["code"]
        == "conflict"
    )
    changed = api.client.patch(
        f"/subscriptions/{sub_id}", json={"name": "renamed", "query": "Armenia", "status": "paused"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "renamed" and changed.json()["status"] == "paused"
    assert changed.json()["query"] == "Armenia"
    assert api.client.delete(f"/subscriptions/{sub_id}").status_code == 204
    assert error(api.get(f"/subscriptions/{sub_id}"), 404)["code"] == "not_found"


def test_subscription_given_secret_is_kept(api: Api, http_server: LoopbackServer) -> None:
    """A valid secret in the request is the one stored and signed with."""
    created = new_sub(api, http_server.url("/hook"), secret=SECRET)
    assert created["secret"] == SECRET
    assert api.store.get_signing_secrets(created["id"]) == [SECRET]


def test_subscription_bad_input(api: Api, http_server: LoopbackServer) -> None:
    """Bad query (with its position), private webhook, bad secret, bad status: 422 naming the field."""
    hook = http_server.url("/hook")
    bad_query = error(api.post("/subscriptions", {"query": "Armenia AND (ceasefire", "webhook": hook}), 422)
    assert bad_query["code"] == "invalid_query" and bad_query["field"] == "query"
    assert isinstance(bad_query["position"], int) and "position" in bad_query["message"]
    private = error(api.post("/subscriptions", {"query": "Armenia", "webhook": "http://192.168.1.9/x"}), 422)
    assert private["field"] == "webhook" and "refused" in private["message"]
    assert (
        error(api.post("/subscriptions", {"query": "Armenia", "webhook": hook, "secret": "nope"}), 422)[
            "field"
        ]
        == "secret"
    )
    assert (
        error(
            api.post("/subscriptions", {"query": "Armenia", "webhook": hook, "secret": "whsec_c2hvcnQ="}), 422
        )["field"]
        == "secret"
    )
    assert error(api.post("/subscriptions", {"query": "Armenia"}), 422)["field"] == "webhook"
    assert error(api.post("/subscriptions", {"query": "a\x00b", "webhook": hook}), 422)["field"] == "query"
    sub_id = new_sub(api, hook)["id"]
    assert (
        error(api.client.patch(f"/subscriptions/{sub_id}", json={"status": "disabled"}), 422)["field"]
        == "status"
    )
    assert error(api.client.patch("/subscriptions/sub_nope", json={"name": "x"}), 404)["code"] == "not_found"


def test_rotate_secret_keeps_old_one_signing_for_the_grace_period(
    api: Api, http_server: LoopbackServer
) -> None:
    """Rotation returns a new secret; both sign until the grace period ends, then only the new one."""
    created = new_sub(api, http_server.url("/hook"), secret=SECRET)
    resp = api.post(f"/subscriptions/{created['id']}/rotate-secret")
    assert resp.status_code == 200, resp.text
    rotated = resp.json()
    assert rotated["secret"] != SECRET and rotated["secret"].startswith("whsec_")
    expires = datetime.fromisoformat(rotated["previous_secret_expires_at"].replace("Z", "+00:00"))
    assert api.store.get_signing_secrets(created["id"]) == [rotated["secret"], SECRET]
    later = expires + timedelta(seconds=1)
    assert api.store.get_signing_secrets(created["id"], now=later) == [rotated["secret"]]
    assert error(api.post("/subscriptions/sub_nope/rotate-secret"), 404)["code"] == "not_found"


# -- request bodies -------------------------------------------------------------------


def test_bad_json_and_oversize_bodies(api: Api) -> None:
    """Malformed JSON and non-object JSON are 400; a body over the cap is 413, declared or streamed."""
    headers = {"content-type": "application/json"}
    assert error(api.client.post("/feeds", content=b"{nope", headers=headers), 400)["code"] == "bad_json"
    assert error(api.client.post("/feeds", content=b"[1, 2]", headers=headers), 400)["code"] == "bad_json"
    big = b'{"url": "' + b"a" * (api.settings.api_max_body_bytes + 10) + b'"}'
    assert error(api.client.post("/feeds", content=big, headers=headers), 413)["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer, counted while read
        yield big[:1000]
        yield big[1000:]

    assert (
        error(api.client.post("/subscriptions", content=chunks(), headers=headers), 413)["code"]
        == "too_large"
    )


def test_unknown_path_and_wrong_method(api: Api) -> None:
    """Unknown paths are 404 and known paths with another method 405, both as JSON errors."""
    assert error(api.get("/nothing-here"), 404)["code"] == "not_found"
    resp = api.client.put("/feeds")
    assert error(resp, 405)["code"] == "method_not_allowed"
    assert "GET" in resp.headers["allow"]


# -- articles and stories -------------------------------------------------------------------


def test_articles_filters_search_and_one_article(api: Api) -> None:
    """Articles list newest first and filter by language, feed, story, time; q searches; one by id."""
    api.store.add_articles(
        [
            art(1),
            art(2, story="art_1"),
            art(3, language="de", feed_id=2, text="Waffenruhe in Bergkarabach"),
            art(4, text="Ceasefire talks in Armenia"),
        ]
    )
    ids = lambda resp: [a["id"] for a in resp.json()["items"]]  # noqa: E731
    assert ids(api.get("/articles")) == ["art_4", "art_3", "art_2", "art_1"]
    assert ids(api.get("/articles", params={"language": "de"})) == ["art_3"]
    assert ids(api.get("/articles", params={"feed": 2})) == ["art_3"]
    assert ids(api.get("/articles", params={"story": "art_1"})) == ["art_2", "art_1"]
    window = {"since": "2024-05-01T12:02:00Z", "until": "2024-05-01T12:04:00Z"}
    assert ids(api.get("/articles", params=window)) == ["art_3", "art_2"]
    assert ids(api.get("/articles", params={"q": "armenia ceasefire"})) == ["art_4"]
    assert ids(api.get("/articles", params={"q": "body", "language": "en"})) != []
    one = api.get("/articles/art_4").json()
    assert one["title"] == "Title 4" and one["feed_id"] == 1 and one["fetched_at"].endswith("Z")
    assert error(api.get("/articles/art_404"), 404)["code"] == "not_found"
    assert error(api.get("/articles", params={"since": "yesterday"}), 422)["field"] == "since"
    assert error(api.get("/articles", params={"limit": 201}), 422)["field"] == "limit"
    assert error(api.get("/articles", params={"cursor": "garbage"}), 400)["code"] == "bad_cursor"


def test_articles_cursor_pages_listing_and_search(api: Api) -> None:
    """Cursors walk all articles (listing and search) with no repeats, and are tied to their listing."""
    api.store.add_articles([art(n, text=f"common word {n}") for n in range(1, 8)])
    for params in ({}, {"q": "common"}):
        seen, cursor = [], None
        while True:
            more = {"cursor": cursor} if cursor else {}
            body = api.get("/articles", params={"limit": 3, **params, **more})
            assert body.status_code == 200, body.text
            seen += [a["id"] for a in body.json()["items"]]
            cursor = body.json()["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(f"art_{n}" for n in range(1, 8)) and len(seen) == 7
    first = api.get("/articles", params={"limit": 3}).json()["next_cursor"]
    assert error(api.get("/alerts", params={"cursor": first}), 400)["code"] == "bad_cursor"


def test_story_is_the_original_and_its_copies(api: Api) -> None:
    """A story answers its first article and the syndicated copies, oldest first; unknown is 404."""
    api.store.add_articles([art(1), art(2, story="art_1"), art(3, story="art_1")])
    story = api.get("/stories/art_1").json()
    assert story["id"] == "art_1" and story["article"]["id"] == "art_1"
    assert [c["id"] for c in story["copies"]] == ["art_2", "art_3"]
    assert error(api.get("/stories/none"), 404)["code"] == "not_found"


# -- alerts --------------------------------------------------------------------------------


def seed_alerts(api: Api, hook: str) -> tuple[str, list[Alert]]:
    sub_id = new_sub(api, hook)["id"]
    api.store.add_articles([art(n) for n in range(1, 4)])
    alerts = [
        Alert(
            id=f"msg_{n}",
            subscription_id=sub_id,
            story_id=f"art_{n}",
            article_id=f"art_{n}",
            matched_terms=["Armenia"],
            created_at=T0 + timedelta(minutes=n),
        )
        for n in range(1, 4)
    ]
    api.store.add_alerts(alerts)
    api.store.record_attempt("msg_1", status="delivered", attempts=1, next_attempt_at=None, error=None)
    api.store.record_attempt("msg_2", status="failed", attempts=8, next_attempt_at=None, error="HTTP 500")
    return sub_id, alerts


def test_alert_log_failed_and_one(api: Api, http_server: LoopbackServer) -> None:
    """The log lists newest first and filters by status and subscription; /alerts/failed the dead letters."""
    sub_id, _ = seed_alerts(api, http_server.url("/hook"))
    ids = lambda resp: [a["id"] for a in resp.json()["items"]]  # noqa: E731
    assert ids(api.get("/alerts")) == ["msg_3", "msg_2", "msg_1"]
    assert ids(api.get("/alerts", params={"status": "delivered"})) == ["msg_1"]
    assert ids(api.get("/alerts", params={"subscription": sub_id, "limit": 1})) == ["msg_3"]
    assert ids(api.get("/alerts/failed")) == ["msg_2"]
    assert api.get("/alerts/msg_2").json()["last_error"] == "HTTP 500"
    assert error(api.get("/alerts", params={"status": "lost"}), 422)["field"] == "status"
    assert error(api.get("/alerts/msg_nope"), 404)["code"] == "not_found"
    page1 = api.get("/alerts", params={"limit": 2}).json()
    page2 = api.get("/alerts", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [a["id"] for a in page1["items"] + page2["items"]] == ["msg_3", "msg_2", "msg_1"]
    assert page2["next_cursor"] is None


def test_replay_sets_failed_alert_pending_and_queues_it(
    api: Api, http_server: LoopbackServer, redis_client: redis.Redis
) -> None:
    """Replay answers 202, the alert is pending and due again with one attempt left, the sender is woken."""
    seed_alerts(api, http_server.url("/hook"))
    redis_client.delete(f"{api.settings.redis_prefix}sender:wake")
    resp = api.post("/alerts/msg_2/replay")
    assert resp.status_code == 202, resp.text
    one_left = len(api.settings.webhook_retry_schedule)  # the replay's attempt is the last one
    assert resp.json()["status"] == "pending" and resp.json()["attempts"] == one_left
    assert api.store.get_alert("msg_2").status == "pending"
    assert redis_client.llen(f"{api.settings.redis_prefix}sender:wake") == 1
    assert error(api.post("/alerts/msg_2/replay"), 409)["code"] == "conflict"  # pending now
    assert error(api.post("/alerts/msg_1/replay"), 409)["code"] == "conflict"  # delivered
    assert error(api.post("/alerts/msg_nope/replay"), 404)["code"] == "not_found"


def test_replay_refused_while_subscription_disabled(api: Api, http_server: LoopbackServer) -> None:
    """A failed alert of a disabled subscription is not replayed (409) until it is active again."""
    sub_id, _ = seed_alerts(api, http_server.url("/hook"))
    api.store.set_subscription_status(sub_id, "disabled", "receiver answered 410 Gone")
    assert "disabled" in error(api.post("/alerts/msg_2/replay"), 409)["message"]
    assert api.client.patch(f"/subscriptions/{sub_id}", json={"status": "active"}).status_code == 200
    assert api.post("/alerts/msg_2/replay").status_code == 202


# -- metrics ---------------------------------------------------------


def test_metrics_render_counts_and_queue_depths(api: Api, redis_client: redis.Redis) -> None:
    """/metrics shows recorded counters, live queue depths and the outbox's gauges (Prometheus text)."""
    from ingest import metrics

    metrics.record(redis_client, api.settings.redis_prefix, "ingest_feeds_polled_total", {"outcome": "ok"}, 3)
    Queue("ingest", connection=redis_client, serializer=JSONSerializer).enqueue("builtins.len", [1])
    resp = api.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert 'ingest_feeds_polled_total{outcome="ok"} 3.0' in resp.text
    assert 'ingest_queue_depth{queue="ingest",state="queued"} 1.0' in resp.text
    assert 'ingest_workers{queue="ingest"} 0.0' in resp.text
    for gauge in ("ingest_alerts_due", "ingest_alerts_in_flight", "ingest_alerts_oldest_due_seconds",
                  "ingest_receivers_circuit_open"):  # fmt: skip
        assert f"\n{gauge} " in resp.text
