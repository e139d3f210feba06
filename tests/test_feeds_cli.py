"""`ingest feeds ...` run as a real process against loopback servers, real Redis and SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import LoopbackServer, Response

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Daily</title>'
    b"<item><guid>1</guid><title>One</title><description>one</description></item></channel></rss>"
)
PAGE = b"""<!doctype html><html><head><title>Blog</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" type="application/rss+xml" title="Posts" href="/feed.xml">
<link rel="alternate" type="application/atom+xml" href="/atom.xml">
</head><body>hello</body></html>"""

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture()
def run(tmp_path: Path, redis_url: str, redis_client: object) -> Run:
    """Runs `ingest ARGS...` in a subprocess with the test's data dir and Redis db."""
    env = {
        "INGEST_DATA_DIR": str(tmp_path / "data"),
        "REDIS_URL": redis_url,
        "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8",
        "INGEST_LOG_FORMAT": "console",
        "INGEST_LOG_LEVEL": "warning",
        "PATH": "/usr/bin:/bin",
    }

    def call(*args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            input=stdin,
            timeout=120,
            check=False,
        )

    return call


def listed(run: Run) -> list[dict[str, object]]:
    done = run("feeds", "list", "--json")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_add_on_a_web_page_discovers_its_feed(run: Run, http_server: LoopbackServer) -> None:
    """A page URL is replaced by the first feed its <link rel="alternate"> announces."""
    http_server.routes["/blog"] = Response(200, PAGE, {"Content-Type": "text/html"})
    http_server.routes["/feed.xml"] = Response(200, RSS, {"Content-Type": "application/rss+xml"})
    done = run("feeds", "add", http_server.url("/blog"))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"1\t{http_server.url('/feed.xml')}\n"
    assert "found feed" in done.stderr
    [feed] = listed(run)
    assert feed["url"] == http_server.url("/feed.xml") and feed["title"] == "Daily"


def test_add_a_feed_url_with_interval(run: Run, http_server: LoopbackServer) -> None:
    """A feed URL is added as given, with its fixed interval; a too-short interval is refused."""
    http_server.routes["/f"] = Response(200, RSS, {"Content-Type": "application/rss+xml"})
    assert run("feeds", "add", http_server.url("/f"), "--interval", "900").returncode == 0
    assert listed(run)[0]["interval"] == 900
    refused = run("feeds", "add", http_server.url("/f"), "--interval", "10")
    assert refused.returncode == 2 and "interval: expected `int` >= 60" in refused.stderr


def test_add_a_page_without_feed_is_refused(run: Run, http_server: LoopbackServer) -> None:
    """A page announcing no feed is refused with the reason, and nothing is added."""
    http_server.routes["/p"] = Response(
        200, b"<!doctype html><html><body>x</body></html>", {"Content-Type": "text/html"}
    )
    done = run("feeds", "add", http_server.url("/p"))
    assert done.returncode == 2 and "links to no feed" in done.stderr
    assert listed(run) == []


def test_add_private_address_is_refused(run: Run) -> None:
    """Without INGEST_ALLOWED_NETWORKS, a loopback feed URL is refused in plain words."""
    done = run("feeds", "add", "http://127.0.0.1:9/feed", INGEST_ALLOWED_NETWORKS="")
    assert done.returncode == 2
    assert "refused: resolves to loopback address 127.0.0.1" in done.stderr


def test_list_json_shows_state_and_schedule(run: Run, http_server: LoopbackServer) -> None:
    """After a poll, each feed shows last success or error, errors, next poll and the chosen interval."""
    http_server.routes["/ok"] = Response(
        200, RSS, {"Content-Type": "application/rss+xml", "Cache-Control": "max-age=3600"}
    )
    http_server.routes["/bad"] = Response(503, b"busy", {"Retry-After": "30"})
    run("feeds", "add", http_server.url("/ok"))
    run("feeds", "add", http_server.url("/bad"))
    assert run("poll", "--once").returncode == 0
    ok, bad = listed(run)
    for feed in (ok, bad):
        assert {
            "last_success_at",
            "last_error",
            "consecutive_errors",
            "next_poll_at",
            "status",
            "schedule_interval",
            "schedule_reason",
            "muted_reason",
            "redirect_url",
            "websub",
        } <= set(feed)
    assert ok["last_success_at"] and ok["last_error"] is None and ok["status"] == "active"
    assert "server asks 1h (Cache-Control max-age)" in str(ok["schedule_reason"])
    assert bad["last_error"] == "HTTP 503 Service Unavailable" and bad["consecutive_errors"] == 1
    assert bad["last_success_at"] is None and bad["next_poll_at"]
    assert "backoff after 1 consecutive error" in str(bad["schedule_reason"])


def test_gone_feed_is_muted_then_enabled(run: Run, http_server: LoopbackServer) -> None:
    """410 shows as status gone with a reason; `feeds enable` makes it active again."""
    http_server.routes["/f"] = Response(410, b"gone")
    run("feeds", "add", http_server.url("/f"))
    run("poll", "--once")
    [feed] = listed(run)
    assert feed["status"] == "gone" and "410 Gone" in str(feed["muted_reason"])
    done = run("feeds", "enable", "1")
    assert done.returncode == 0 and done.stdout.endswith("\tactive\n")
    [feed] = listed(run)
    assert feed["status"] == "active" and feed["muted_reason"] is None and feed["consecutive_errors"] == 0


def test_remove(run: Run, http_server: LoopbackServer) -> None:
    """`feeds remove ID` removes; an unknown id exits 2 with a message."""
    http_server.routes["/f"] = Response(200, RSS)
    run("feeds", "add", http_server.url("/f"))
    assert run("feeds", "remove", "1").returncode == 0
    assert listed(run) == []
    missing = run("feeds", "remove", "42")
    assert missing.returncode == 2 and "no feed with id 42" in missing.stderr


OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>mine</title></head><body>
  <outline text="News">
    <outline type="rss" text="A" xmlUrl="{a}"/>
    <outline text="Deeper"><outline type="rss" title="B" xmlUrl="{b}"/></outline>
  </outline>
  <outline type="rss" text="A again" xmlUrl="{a}"/>
  <outline type="rss" text="private" xmlUrl="http://10.0.0.1/feed"/>
  <outline type="rss" text="ftp" xmlUrl="ftp://example.com/feed"/>
  <outline text="category without feed"/>
</body></opml>"""


def test_import_and_export_opml(run: Run, http_server: LoopbackServer, tmp_path: Path) -> None:
    """Nested outlines are imported once each, unsafe URLs skipped; export lists them all."""
    a, b = http_server.url("/a"), http_server.url("/b")
    path = tmp_path / "feeds.opml"
    path.write_text(OPML.format(a=a, b=b))
    done = run("feeds", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"1\t{a}", f"2\t{b}"]
    assert "skipped http://10.0.0.1/feed: refused: resolves to private address" in done.stderr
    assert "skipped ftp://example.com/feed: refused: scheme 'ftp'" in done.stderr
    assert "imported 2 feeds (0 already present, 2 skipped)" in done.stderr
    assert [f["title"] for f in listed(run)] == ["A", "B"]
    again = run("feeds", "import", str(path))
    assert "imported 0 feeds (2 already present, 2 skipped)" in again.stderr

    exported = run("feeds", "export")
    assert exported.returncode == 0
    root = etree.fromstring(exported.stdout.encode())
    assert root.get("version") == "2.0"
    assert [o.get("xmlUrl") for o in root.iter("outline")] == [a, b]
    (tmp_path / "out.opml").write_text(exported.stdout)
    other = run("feeds", "import", "-", stdin=exported.stdout, INGEST_DATA_DIR=str(tmp_path / "other"))
    assert other.stdout.splitlines() == [f"1\t{a}", f"2\t{b}"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<rss/>", "not an OPML file: the root element is not <opml>"),
        ("<opml><body><outline", "not an OPML file:"),
        (
            '<!DOCTYPE opml [<!ENTITY a "x"><!ENTITY b "&a;&a;&a;">]><opml><body>'
            '<outline text="&b;" xmlUrl="http://127.0.0.1/f"/></body></opml>',
            "declares XML entities",
        ),
    ],
)
def test_import_refuses_bad_files(run: Run, tmp_path: Path, text: str, message: str) -> None:
    """Non-OPML, malformed or entity-declaring files are refused with a one-line error, nothing added."""
    path = tmp_path / "x.opml"
    path.write_text(text)
    done = run("feeds", "import", str(path))
    assert done.returncode == 2 and message in done.stderr
    assert listed(run) == []
