"""Backfill (`subs add --backfill 7d` and the API's `backfill`), option parsing, and the
language/feed filters applied to live matching."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from standardwebhooks.webhooks import Webhook

from app.cli import main
from app.runtime import Runtime
from ingest.errors import ConfigError
from ingest.models import RawEntry, utcnow
from ingest.services.subscriptions import backfill, parse_languages, parse_period, parse_rate_limit
from ingest.settings import Settings
from ingest.store.base import Store
from tests.alerting import drain, lower, make_article, make_sub, posts, statuses
from tests.conftest import LoopbackServer, Response
from tests.test_api import running_api


@pytest.fixture()
def ctx(settings: Settings, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The CLI and the test share the data dir and Redis db."""
    for key, value in {
        "INGEST_DATA_DIR": str(settings.data_dir),
        "REDIS_URL": settings.redis_url or "",
        "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8",
    }.items():
        monkeypatch.setenv(key, value)
    context = Runtime(Settings.from_env())
    yield context


class TestParsing:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [("7d", 7 * 86400), ("12h", 43200), ("30m", 1800), ("2w", 14 * 86400), (" 90s ", 90)],
    )
    def test_periods(self, text: str, seconds: int) -> None:
        """Periods are a number and a unit: s, m, h, d, w."""
        assert parse_period(text) == timedelta(seconds=seconds)

    @pytest.mark.parametrize("bad", ["7", "d", "0d", "7y", "400d", ""])
    def test_bad_periods(self, bad: str) -> None:
        """No unit, zero, unknown units and more than a year are refused."""
        with pytest.raises(ConfigError, match="backfill"):
            parse_period(bad)

    def test_rate_limits_and_languages(self) -> None:
        """`10/min` and `10` are ten a minute; languages are lower-cased, split on commas, deduplicated."""
        assert parse_rate_limit("10/min") == parse_rate_limit("10") == 10
        with pytest.raises(ConfigError):
            parse_rate_limit("0/min")
        assert parse_languages(["EN,de", "en"]) == ("en", "de")


class TestBackfill:
    def test_cli_backfill_alerts_once_per_story(
        self, ctx: Runtime, http_server: LoopbackServer, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Stories stored in the period alert once (their earliest matching article); older, other-language
        and non-matching articles do not; a second backfill adds nothing."""
        store = ctx.store
        now = utcnow()
        make_article(store, 1, story="s1", fetched_at=now - timedelta(days=1))
        make_article(store, 2, story="s1", fetched_at=now - timedelta(days=2))  # same story, earlier
        make_article(store, 3, story="s3", fetched_at=now - timedelta(days=10))  # outside 7 days
        make_article(
            store, 4, story="s4", fetched_at=now - timedelta(hours=1), text="Tram fares rise.", title="Trams"
        )
        make_article(store, 5, story="s5", fetched_at=now - timedelta(hours=2), language="de")
        make_article(store, 6, story="s6", fetched_at=now - timedelta(hours=3))
        http_server.routes["/hook"] = Response(204)
        code = main(
            [
                "subs",
                "add",
                "--query",
                "ceasefire",
                "--webhook",
                http_server.url("/hook"),
                "--lang",
                "en",
                "--backfill",
                "7d",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        sub_id, secret = out.out.split()
        assert "backfill: 2 stories" in out.err
        worker = Runtime(Settings.from_env())
        drain(worker, lambda: statuses(worker) == ["delivered", "delivered"])
        payloads = [Webhook(secret).verify(r.body, lower(r)) for r in posts(http_server)]
        assert sorted(p["data"]["article"]["id"] for p in payloads) == ["art_2", "art_6"]
        assert len({lower(r)["webhook-id"] for r in posts(http_server)}) == 2
        assert backfill(worker.store, worker.store.get_subscription(sub_id), timedelta(days=7)) == []

    def test_api_backfill_and_options(
        self, store: Store, settings: Settings, redis_client: redis.Redis, http_server: LoopbackServer
    ) -> None:
        """POST /subscriptions takes `options` and `backfill`; bad options are a 422 naming `options`."""
        make_article(store, 1, story="s1")
        for api in running_api(store, settings):
            body = {
                "query": "ceasefire",
                "webhook": http_server.url("/hook"),
                "backfill": "7d",
                "options": {"languages": ["en"], "digest_minutes": 60, "rate_limit": 5},
            }
            created = api.post("/subscriptions", body)
            assert created.status_code == 201, created.text
            answer = created.json()
            assert answer["backfilled"] == 1
            assert answer["options"] == {
                "languages": ["en"],
                "feed_ids": [],
                "digest_minutes": 60,
                "rate_limit": 5,
            }
            bad = api.post("/subscriptions", {**body, "options": {"languages": ["english"]}})
            assert bad.status_code == 422 and bad.json()["error"]["field"] == "options"
            changed = api.client.patch(f"/subscriptions/{answer['id']}", json={"options": {"rate_limit": 9}})
            assert changed.status_code == 200 and changed.json()["options"]["rate_limit"] == 9


class TestLiveFilters:
    def test_language_and_feed_filters_in_the_pipeline(
        self, ctx: Runtime, http_server: LoopbackServer
    ) -> None:
        """Live matches honour each subscription's language and feed filters."""
        hook = http_server.url("/hook")
        make_sub(ctx.store, hook, "sub_any", query="NATO")
        make_sub(ctx.store, hook, "sub_en", query="NATO", languages=("en",))
        make_sub(ctx.store, hook, "sub_feed2", query="NATO", feed_ids=(2,))
        english = RawEntry(
            feed_id=1,
            feed_url="https://feeds.example/1.xml",
            entry_key="en1",
            url=None,
            title="NATO ministers meet in Brussels",
            content="NATO defence ministers met in Brussels on Thursday to discuss the "
            "alliance's budget and the situation on its eastern border.",
            is_html=False,
        )
        german = RawEntry(
            feed_id=2,
            feed_url="https://feeds.example/2.xml",
            entry_key="de1",
            url=None,
            title="NATO-Minister treffen sich in Brüssel",
            content="Die Verteidigungsminister der NATO haben sich am Donnerstag in Brüssel "
            "getroffen, um über den Haushalt des Bündnisses zu beraten.",
            is_html=False,
        )
        result = ctx.pipeline.process([english, german])
        assert [a.language for a in result.stored] == ["en", "de"]
        matched = sorted((a.subscription_id, a.article_id.split("_")[0]) for a in result.alerts)
        by_sub = sorted(a.subscription_id for a in result.alerts)
        assert by_sub == ["sub_any", "sub_any", "sub_en", "sub_feed2"], matched
        en_id = next(a.id for a in result.stored if a.language == "en")
        assert next(a for a in result.alerts if a.subscription_id == "sub_en").article_id == en_id
        assert next(a for a in result.alerts if a.subscription_id == "sub_feed2").article_id != en_id
