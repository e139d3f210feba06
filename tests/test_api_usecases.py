"""The API on the shared use cases: strict parameters, secrets out of sight, delivery state,
feed edits, and the same refusals as the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from ingest.clean.url import origin
from ingest.models import Alert, utcnow
from ingest.settings import Settings
from ingest.store.base import Store
from ingest.store.outbox import ReceiverState
from tests.conftest import LoopbackServer
from tests.test_api import Api, art, error, new_sub, running_api


@pytest.fixture()
def api(store: Store, settings: Settings, redis_client: redis.Redis) -> Iterator[Api]:
    yield from running_api(store, settings)


def test_unknown_query_parameters_are_422(api: Api) -> None:
    """`?lang=de` is refused naming `lang` (it used to return every article), on every resource."""
    api.store.add_articles([art(1), art(2, language="de")])
    refused = error(api.get("/articles", params={"lang": "de"}), 422)
    assert refused["field"] == "lang" and "language" in refused["message"]
    assert error(api.get("/feeds", params={"page": 2}), 422)["field"] == "page"
    assert error(api.get("/articles/art_1", params={"x": 1}), 422)["field"] == "x"
    assert error(api.get("/articles", params={"language": "xx"}), 422)["field"] == "language"
    assert [a["id"] for a in api.get("/articles", params={"language": "de"}).json()["items"]] == ["art_2"]
    assert api.client.get("/healthz", params={"probe": 1}).status_code == 200


def test_secrets_are_not_cached_nor_shown(api: Api, http_server: LoopbackServer) -> None:
    """Answers carrying a secret say no-store; webhook tokens and userinfo are redacted everywhere."""
    hook = http_server.url("/hook").replace("http://", "http://user:pw@") + "?token=s3cret"
    resp = api.post("/subscriptions", {"query": "Armenia", "webhook": hook})
    assert resp.status_code == 201 and resp.headers["cache-control"] == "no-store"
    sub = resp.json()
    assert sub["webhook"] == http_server.url("/hook").replace("http://", "http://***@") + "?token=***"
    rotated = api.post(f"/subscriptions/{sub['id']}/rotate-secret")
    assert rotated.headers["cache-control"] == "no-store"
    assert "no-store" not in api.get(f"/subscriptions/{sub['id']}").headers.get("cache-control", "")
    assert "s3cret" not in api.get("/subscriptions").text
    assert api.store.get_subscription(sub["id"]).webhook == hook
    api.store.add_articles([art(1)])
    api.store.add_alerts(
        [Alert(id="msg_1", subscription_id=sub["id"], story_id="art_1", article_id="art_1", matched_terms=[])]
    )
    api.store.record_attempt(
        "msg_1", status="failed", attempts=3, next_attempt_at=None, error=f"webhook: {hook}: HTTP 500"
    )
    assert "s3cret" not in api.get("/alerts/msg_1").text and "token=***" in api.get("/alerts/msg_1").text


def test_subscription_shows_its_receivers_circuit(api: Api, http_server: LoopbackServer) -> None:
    """A subscription whose receiver's circuit is open says so, with the next attempt's time."""
    sub = new_sub(api, http_server.url("/hook"))
    assert api.get(f"/subscriptions/{sub['id']}").json()["delivery"]["circuit"] == "closed"
    until = utcnow() + timedelta(minutes=3)
    api.store.save_receiver(
        ReceiverState(
            origin=origin(http_server.url("/hook")),
            state="open",
            failures=4,
            open_until=until,
            last_error="HTTP 503",
        )
    )
    delivery = api.get(f"/subscriptions/{sub['id']}").json()["delivery"]
    assert delivery["state"] == "active" and delivery["circuit"] == "open" and delivery["next_attempt_at"]
    paused = api.client.patch(f"/subscriptions/{sub['id']}", json={"status": "paused"}).json()
    assert paused["delivery"]["state"] == "paused"


def test_feed_edit_and_duplicates(api: Api, http_server: LoopbackServer) -> None:
    """PATCH /feeds/{id} changes interval and full text; a second POST of the URL is 409."""
    feed = api.post("/feeds", {"url": http_server.url("/rss"), "interval": 300}).json()
    assert error(api.post("/feeds", {"url": http_server.url("/rss")}), 409)["code"] == "conflict"
    changed = api.client.patch(f"/feeds/{feed['id']}", json={"interval": 900, "fulltext": True})
    assert changed.status_code == 200 and (changed.json()["interval"], changed.json()["fulltext"]) == (
        900,
        True,
    )
    assert error(api.client.patch(f"/feeds/{feed['id']}", json={"interval": 5}), 422)["field"] == "interval"
    assert error(api.client.patch("/feeds/999", json={"fulltext": False}), 404)["code"] == "not_found"


def test_webhook_refusal_names_the_webhook(api: Api) -> None:
    """A private webhook is refused as a webhook, not as a fetch."""
    refused = error(api.post("/subscriptions", {"query": "x", "webhook": "http://10.0.0.1/h"}), 422)
    assert refused["field"] == "webhook" and refused["message"].startswith("webhook: refused")
