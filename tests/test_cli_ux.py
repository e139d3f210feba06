"""What a user of `ingest` meets: one error line and status 2, quiet broken pipes, 130 on Ctrl-C,
`--version`, sentences for what a command did, the API's listings and edits, strict validation,
secrets redacted, a refused missing database, and the demo's rerun and allowance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.runtime import Runtime
from ingest.models import utcnow
from ingest.settings import Settings
from ingest.store.outbox import ReceiverState
from tests.alerting import make_article, make_sub, queue_alerts
from tests.conftest import LoopbackServer, Response, free_port

Capture = pytest.CaptureFixture[str]
RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Daily</title>'
    b"<item><guid>1</guid><title>Ceasefire holds</title>"
    b"<description>The ceasefire held overnight.</description></item>"
    b"<item><guid>2</guid><title>Talks</title><description>Talks resumed.</description></item>"
    b"</channel></rss>"
)


@pytest.fixture()
def rt(settings: Settings, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The CLI (in-process) and the test share the data dir and Redis db; the database exists."""
    for key, value in {
        "INGEST_DATA_DIR": str(settings.data_dir),
        "REDIS_URL": settings.redis_url or "",
        "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8",
        "INGEST_LOG_LEVEL": "warning",
    }.items():
        monkeypatch.setenv(key, value)
    runtime = Runtime(Settings.from_env())
    runtime.store  # noqa: B018 - creates the database
    yield runtime
    runtime.close()


def cli(capsys: Capture, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ingest: error: "), err
    return lines[0]


# -- the error path ---------------------------------------------------------------------------


def test_version() -> None:
    from importlib.metadata import version

    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"ingest (news-ingest) {version('news-ingest')}"


def test_process_jsonl_missing_or_not_utf8_is_one_line(tmp_path: Path) -> None:
    """A missing file and a Latin-1 file each end with one error line and status 2."""
    missing = run("process", "--jsonl", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in one_error_line(missing.stderr)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"title": "a", "text": "b"}\n{"title": "caf\xe9", "text": "x"}\n')
    bad = run("process", "--jsonl", str(latin))
    assert bad.returncode == 2 and "line 2: not UTF-8" in one_error_line(bad.stderr)
    debug = run("process", "--jsonl", str(latin), env={"INGEST_LOG_LEVEL": "debug"})
    assert debug.returncode == 2 and "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1].startswith("ingest: error: ")


@pytest.mark.parametrize("command", [["alerts", "sweep"], ["worker", "--burst"]])
def test_unreachable_redis_is_one_line(tmp_path: Path, command: list[str]) -> None:
    """A REDIS_URL nobody answers fails one-shot commands at once, in one line."""
    data = tmp_path / "data"
    assert run("db", "upgrade", env={"INGEST_DATA_DIR": str(data)}).returncode == 0
    started = time.monotonic()
    done = run(
        *command, env={"INGEST_DATA_DIR": str(data), "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    )
    assert done.returncode == 2 and "does not answer" in one_error_line(done.stderr)
    assert time.monotonic() - started < 30


def test_broken_pipe_ends_quietly(rt: Runtime) -> None:
    """`articles list --json | head -1`: no traceback, no 'Exception ignored', status 141."""
    for n in range(1, 400):
        make_article(rt.store, n)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "articles", "list", "--json", "--limit", "400"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert json.loads(proc.stdout.readline())["id"]
    proc.stdout.close()
    assert proc.wait(60) == 141
    assert proc.stderr.read() == b""


def test_ctrl_c_exits_130() -> None:
    """Interrupted while waiting for its input, a command exits 130 without a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "process", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(2)  # imported and reading stdin
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and b"Traceback" not in err


def test_mistyped_data_dir_is_refused(tmp_path: Path) -> None:
    """A command that only reads refuses a data directory without a database; `feeds add` creates one."""
    env = {"INGEST_DATA_DIR": str(tmp_path / "typo"), "REDIS_URL": ""}
    done = run("subs", "list", env=env)
    assert done.returncode == 2 and "no database at" in one_error_line(done.stderr)
    assert not (tmp_path / "typo" / "ingest.db").exists()
    created = run("db", "upgrade", "--json", env=env)
    assert json.loads(created.stdout)["created"] is True
    again = run("db", "upgrade", env=env)
    assert again.returncode == 0 and "schema at version" in again.stdout and "created" not in again.stdout


# -- listings and edits -------------------------------------------------------------------


def test_articles_filters_and_show(rt: Runtime, capsys: Capture) -> None:
    """`articles list` filters like the API (language, feed, q, since); `articles show` prints one."""
    make_article(rt.store, 1, language="de", feed_id=2)
    make_article(rt.store, 2)
    make_article(rt.store, 3, story="art_2")
    ids = lambda out: [json.loads(line)["id"] for line in out.splitlines()]  # noqa: E731
    assert ids(cli(capsys, "articles", "list", "--json", "--language", "de")[1]) == ["art_1"]
    assert ids(cli(capsys, "articles", "list", "--json", "--feed", "1")[1]) == ["art_3", "art_2"]
    since = (utcnow() + timedelta(days=1)).isoformat()
    assert ids(cli(capsys, "articles", "list", "--json", "--since", since)[1]) == []
    code, _, err = cli(capsys, "articles", "list", "--language", "xx")
    assert code == 2 and "not an ISO 639-1 code" in one_error_line(err)
    code, out, _ = cli(capsys, "articles", "show", "art_2")
    assert code == 0 and "art_2" in out
    assert cli(capsys, "articles", "show", "art_9")[0] == 2
    code, out, _ = cli(capsys, "stories", "show", "art_2", "--json")
    story = json.loads(out)
    assert story["article"]["id"] == "art_2" and [c["id"] for c in story["copies"]] == ["art_3"]
    code, out, _ = cli(capsys, "stories", "list", "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["art_2", "art_1"]


def test_feeds_edit_refresh_and_remove(rt: Runtime, capsys: Capture, http_server: LoopbackServer) -> None:
    """Re-adding is refused naming `feeds edit`; edit changes interval, full text, name; refresh polls now."""
    http_server.routes["/rss"] = Response(200, RSS, {"Content-Type": "application/rss+xml"})
    code, out, _ = cli(capsys, "feeds", "add", http_server.url("/rss"), "--interval", "600")
    feed_id = int(out.split("\t")[0])
    code, _, err = cli(capsys, "feeds", "add", http_server.url("/rss"), "--interval", "900")
    assert code == 2 and f"ingest feeds edit {feed_id}" in one_error_line(err)
    code, out, _ = cli(
        capsys, "feeds", "edit", str(feed_id), "--interval", "900", "--fulltext", "--name", "D", "--json"
    )
    edited = json.loads(out)
    assert code == 0 and (edited["interval"], edited["fulltext"], edited["title"]) == (900, True, "D")
    code, out, _ = cli(capsys, "feeds", "edit", str(feed_id), "--default-interval", "--no-fulltext")
    assert code == 0 and "adaptive schedule" in out and "full text off" in out
    assert rt.store.get_feed(feed_id).interval is None
    fetched = len(http_server.requests)
    code, out, _ = cli(capsys, "feeds", "refresh", str(feed_id), "--json")
    polled = json.loads(out)
    assert code == 0 and polled["new"] == 2 and polled["feed"]["last_success_at"]
    assert len(http_server.requests) == fetched + 1
    code, out, _ = cli(capsys, "feeds", "remove", str(feed_id))
    assert code == 0 and out.startswith(f"removed feed {feed_id} ")


def test_subs_edit_lang_and_redaction(rt: Runtime, capsys: Capture, http_server: LoopbackServer) -> None:
    """`subs edit` changes what it is given; `--lang xx` is refused; tokens in webhooks are never shown."""
    hook = http_server.url("/hook").replace("http://", "http://user:pw@") + "?token=s3cret"
    code, out, _ = cli(capsys, "subs", "add", "--query", "ceasefire", "--webhook", hook, "--lang", "en")
    sub_id = out.split()[0]
    code, _, err = cli(capsys, "subs", "add", "--query", "x", "--webhook", hook, "--lang", "xx")
    assert code == 2 and "not an ISO 639-1 code" in one_error_line(err)
    code, _, _ = cli(
        capsys, "subs", "edit", sub_id, "--name", "truce", "--lang", "de", "--rate-limit", "5/min"
    )
    [listed] = [json.loads(line) for line in cli(capsys, "subs", "list", "--json")[1].splitlines()]
    assert listed["name"] == "truce" and listed["query"] == "ceasefire"
    assert listed["options"]["languages"] == ["de"] and listed["options"]["rate_limit"] == 5
    assert listed["delivery"] == {
        "state": "active",
        "circuit": "closed",
        "next_attempt_at": None,
        "receiver_error": None,
    }
    text = cli(capsys, "subs", "list")[1]
    assert "s3cret" not in text and "pw" not in text and "token=***" in text and "***@" in text
    assert rt.store.get_subscription(sub_id).webhook == hook  # the stored URL keeps them


def test_alerts_list_and_status(rt: Runtime, capsys: Capture, http_server: LoopbackServer) -> None:
    """`alerts list` filters by status; `alerts status --json` shows the outbox and the open circuit."""
    from ingest.clean.url import origin

    sub = make_sub(rt.store, http_server.url("/hook"))
    queue_alerts(rt, sub, [make_article(rt.store, 1), make_article(rt.store, 2)])
    [first, _] = rt.store.subscription_alerts(sub.id, "pending")
    rt.store.record_attempt(
        first.id,
        status="failed",
        attempts=3,
        next_attempt_at=None,
        error=f"webhook: {http_server.url('/hook?token=x')}: HTTP 500",
    )
    until = utcnow() + timedelta(minutes=5)
    rt.store.save_receiver(
        ReceiverState(
            origin=origin(sub.webhook), state="open", failures=5, open_until=until, last_error="HTTP 500"
        )
    )
    listed = [
        json.loads(line)
        for line in cli(capsys, "alerts", "list", "--json", "--status", "failed")[1].splitlines()
    ]
    assert [a["id"] for a in listed] == [first.id] and "token=***" in listed[0]["last_error"]
    code, out, _ = cli(capsys, "alerts", "status", "--json")
    status: dict[str, Any] = json.loads(out)
    assert code == 0 and status["failed"] == 1 and status["due"] == 1 and status["open_circuits"] == 1
    assert status["receivers"][0]["state"] == "open"
    [view] = [json.loads(line) for line in cli(capsys, "subs", "list", "--json")[1].splitlines()]
    assert view["delivery"]["circuit"] == "open" and view["delivery"]["next_attempt_at"]
    code, out, _ = cli(capsys, "alerts", "sweep", "--json")
    assert code == 0 and json.loads(out)["digests_cut"] == 0


# -- the demo -----------------------------------------------------------------------------


def test_demo_rerun_says_so_and_fresh_starts_over(rt: Runtime, capsys: Capture) -> None:
    """A second demo run over polled demo feeds says nothing new will come; --fresh removes its data."""
    from dataclasses import replace

    from app.cli.up import _setup_demo, keep_demo_allowance

    keep_demo_allowance(rt.settings.replace(allowed_networks=()))
    assert "127.0.0.0/8" in [
        str(n) for n in Settings.from_env({"INGEST_DATA_DIR": str(rt.settings.data_dir)}).allowed_networks
    ]
    for server in _setup_demo(rt):
        server.close()
    assert "run the demo before" not in capsys.readouterr().out
    for feed in rt.store.list_feeds():
        rt.store.record_fetch(replace(feed, last_success_at=utcnow()))
    for server in _setup_demo(rt):
        server.close()
    assert "--fresh" in capsys.readouterr().out
    before = {f.id for f in rt.store.list_feeds()}
    for server in _setup_demo(rt, fresh=True):
        server.close()
    assert "run the demo before" not in capsys.readouterr().out
    assert not before & {f.id for f in rt.store.list_feeds()}
