"""`ingest subs ...` and `ingest alerts ...`: options, status and why, pause/resume, rotation,
removal, dead letters and replay with the same webhook-id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from app.cli import main
from app.runtime import Runtime
from ingest.settings import Settings
from tests.alerting import SECRET, drain, lower, make_article, make_sub, posts, queue_alerts, statuses, work
from tests.conftest import LoopbackServer, Response

Capture = pytest.CaptureFixture[str]


@pytest.fixture()
def ctx(settings: Settings, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The CLI and the test share the data dir, Redis db and a fast retry schedule."""
    for key, value in {
        "INGEST_DATA_DIR": str(settings.data_dir),
        "REDIS_URL": settings.redis_url or "",
        "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8",
        "INGEST_WEBHOOK_RETRY_SCHEDULE": "0.5",
        "INGEST_WEBHOOK_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(key, value)
    context = Runtime(Settings.from_env())
    yield context
    context.close()


def _cli(capsys: Capture, *args: str) -> tuple[int, str, str]:
    """Run `ingest ARGS` in-process; returns (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _listed(capsys: Capture) -> list[dict[str, Any]]:
    code, out, _ = _cli(capsys, "subs", "list", "--json")
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


_current: list[Runtime] = []


def cur() -> Runtime:
    """A runtime on the CLI's data (the previous one closed), to look at what a command did."""
    while _current:
        _current.pop().close()
    _current.append(Runtime(Settings.from_env()))
    return _current[-1]


class TestSubsCommands:
    def test_add_with_options_and_list(
        self, ctx: Runtime, capsys: Capture, http_server: LoopbackServer
    ) -> None:
        """Options given as flags are stored and shown by `subs list --json`, never the secret."""
        feed = cur().store.add_feed("https://feeds.example/world.xml")
        code, out, err = _cli(
            capsys,
            "subs",
            "add",
            "--query",
            "ceasefire",
            "--webhook",
            http_server.url("/hook"),
            "--lang",
            "en,de",
            "--lang",
            "fr",
            "--feed",
            feed.url,
            "--digest",
            "15",
            "--rate-limit",
            "10/min",
        )
        assert code == 0, err
        sub_id, secret = out.split()
        assert secret.startswith("whsec_")
        [listed] = _listed(capsys)
        assert listed["id"] == sub_id and listed["status"] == "active" and listed["status_reason"] is None
        assert listed["options"] == {
            "languages": ["en", "de", "fr"],
            "feed_ids": [feed.id],
            "digest_minutes": 15,
            "rate_limit": 10,
        }
        assert "secret" not in listed and listed["failing_since"] is None

    @pytest.mark.parametrize(
        ("flag", "value", "message"),
        [
            ("--lang", "english", "language"),
            ("--rate-limit", "ten", "rate limit"),
            ("--feed", "https://unknown.example/x.xml", "no such feed"),
            ("--digest", "0", "digest"),
            ("--backfill", "7 years", "backfill"),
        ],
    )
    def test_bad_option_refused(
        self, ctx: Runtime, capsys: Capture, http_server: LoopbackServer, flag: str, value: str, message: str
    ) -> None:
        """A bad option value stops `subs add` with exit 2, naming the problem; nothing is stored."""
        code, _, err = _cli(
            capsys, "subs", "add", "--query", "x", "--webhook", http_server.url("/h"), flag, value
        )
        assert code == 2 and message in err
        assert _listed(capsys) == []

    def test_pause_keeps_alerts_pending_and_resume_delivers(
        self, ctx: Runtime, capsys: Capture, http_server: LoopbackServer
    ) -> None:
        """Paused: alerts stay pending (status and why listed); resume queues them and they arrive."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(cur().store, http_server.url("/hook"))
        assert _cli(capsys, "subs", "pause", sub.id)[0] == 0
        [listed] = _listed(capsys)
        assert listed["status"] == "paused" and "ingest subs pause" in listed["status_reason"]
        worker = cur()
        queue_alerts(worker, sub, [make_article(cur().store, 1), make_article(cur().store, 2)])
        work(worker)
        assert statuses(worker) == ["pending", "pending"] and posts(http_server) == []
        code, out, _ = _cli(capsys, "subs", "resume", sub.id)
        assert code == 0 and out.strip().endswith("2 pending alerts queued")
        worker = cur()
        drain(worker, lambda: statuses(worker) == ["delivered", "delivered"])
        assert len(posts(http_server)) == 2

    def test_rotate_secret_prints_the_new_one(
        self, ctx: Runtime, capsys: Capture, http_server: LoopbackServer
    ) -> None:
        """`subs rotate-secret` prints a new whsec_ secret; the old one still signs in the grace period."""
        sub = make_sub(cur().store, http_server.url("/hook"))
        code, out, err = _cli(capsys, "subs", "rotate-secret", sub.id)
        new = out.strip()
        assert code == 0 and new.startswith("whsec_") and new != SECRET and "until" in err
        assert cur().store.get_signing_secrets(sub.id) == [new, SECRET]

    def test_remove(self, ctx: Runtime, capsys: Capture, http_server: LoopbackServer) -> None:
        """`subs remove` deletes the subscription and its alerts; an unknown id exits 2."""
        sub = make_sub(cur().store, http_server.url("/hook"))
        queue_alerts(cur(), sub, [make_article(cur().store, 1)])
        assert _cli(capsys, "subs", "remove", sub.id)[0] == 0
        assert _listed(capsys) == [] and cur().store.list_alerts() == []
        assert _cli(capsys, "subs", "remove", sub.id)[0] == 2


class TestDeadLetters:
    def test_failed_listed_then_replayed_with_same_id(
        self, ctx: Runtime, capsys: Capture, http_server: LoopbackServer
    ) -> None:
        """`alerts failed --json` lists the dead letter; `alerts replay ID` sends it with its webhook-id."""
        http_server.routes["/hook"] = Response(500)
        sub = make_sub(cur().store, http_server.url("/hook"))
        [alert] = queue_alerts(cur(), sub, [make_article(cur().store, 1)])
        worker = cur()
        drain(worker, lambda: statuses(worker) == ["failed"])
        code, out, _ = _cli(capsys, "alerts", "failed", "--json")
        [failed] = [json.loads(line) for line in out.splitlines()]
        assert code == 0 and failed["id"] == alert.id and "HTTP 500" in failed["last_error"]
        assert alert.id in _cli(capsys, "alerts", "failed")[1]
        http_server.routes["/hook"] = Response(204)
        code, out, _ = _cli(capsys, "alerts", "replay", alert.id)
        assert code == 0 and out.split() == [alert.id]
        worker = cur()
        drain(worker, lambda: statuses(worker) == ["delivered"])
        ids = {lower(r)["webhook-id"] for r in posts(http_server)}
        assert ids == {alert.id}
        Webhook(SECRET).verify(posts(http_server)[-1].body, lower(posts(http_server)[-1]))
        code, _, err = _cli(capsys, "alerts", "replay", alert.id)
        assert code == 2 and "only failed alerts" in err

    def test_replay_by_subscription_after_resume(
        self, ctx: Runtime, capsys: Capture, http_server: LoopbackServer
    ) -> None:
        """A 410 disables (listed with why); replay is refused until resume, then sends all dead letters."""
        http_server.routes["/hook"] = Response(410)
        sub = make_sub(cur().store, http_server.url("/hook"))
        queue_alerts(cur(), sub, [make_article(cur().store, 1), make_article(cur().store, 2)])
        worker = cur()
        drain(worker, lambda: statuses(worker) == ["failed", "failed"])
        [listed] = _listed(capsys)
        assert listed["status"] == "disabled" and "410 Gone" in listed["status_reason"]
        code, _, err = _cli(capsys, "alerts", "replay", "--subscription", sub.id)
        assert code == 2 and "subs resume" in err
        http_server.routes["/hook"] = Response(204)
        assert _cli(capsys, "subs", "resume", sub.id)[0] == 0
        code, out, _ = _cli(capsys, "alerts", "replay", "--subscription", sub.id)
        assert code == 0 and len(out.split()) == 2
        worker = cur()
        drain(worker, lambda: statuses(worker) == ["delivered", "delivered"])
        assert _listed(capsys)[0]["status"] == "active"

    def test_sweep_command_requeues_lost_alerts(
        self, ctx: Runtime, capsys: Capture, http_server: LoopbackServer
    ) -> None:
        """An outbox alert nobody announced (no wake) is still found: `alerts sweep` reports, the sender
        looks on its own."""
        http_server.routes["/hook"] = Response(204)
        sub = make_sub(cur().store, http_server.url("/hook"))
        article = make_article(cur().store, 1)
        from ingest.models import Alert, alert_id, utcnow

        cur().store.add_alerts(
            [
                Alert(
                    id=alert_id(sub.id, article.story_id),
                    subscription_id=sub.id,
                    story_id=article.story_id,
                    article_id=article.id,
                    matched_terms=[],
                    created_at=utcnow(),
                )
            ]
        )
        code, out, _ = _cli(capsys, "alerts", "sweep")
        assert code == 0 and out.startswith("digests cut: 0")
        worker = cur()
        drain(worker, lambda: statuses(worker) == ["delivered"])
