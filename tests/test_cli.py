"""The `ingest` command line: contracts other tools script against."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from ingest.settings import Settings

SEED = Path(__file__).resolve().parents[1] / "app" / "demo" / "feeds" / "seed_sohu_armenia.txt"


@pytest.fixture()
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI at the test's data dir and Redis db."""
    monkeypatch.setenv("INGEST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("INGEST_ALLOWED_NETWORKS", "127.0.0.0/8")
    assert main(["db", "upgrade"]) == 0
    return settings


def _run(
    args: list[str], stdin: str | None = None, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    env = dict(os.environ, INGEST_LOG_FORMAT="json", **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=120,
        env=env,
    )


class TestProcess:
    def test_seed_article_comes_out_clean(self) -> None:
        """`ingest process` on the scraped seed prints the clean article as JSON on stdout only."""
        result = _run(["process", str(SEED)])
        assert result.returncode == 0, result.stderr
        article = json.loads(result.stdout)
        assert article["title"] == (
            "Russia: If the conflict moves to Asia, Russia will provide assistance to Armenia"
        )
        assert article["language"] == "en"
        assert article["text"].startswith("China News Agency, Moscow, October 31")
        assert article["text"].endswith("in violation of the agreement.")
        for residue in ("[ad_", "Original title", "(End up)", "Return to Sohu", "Editor:", "Disclaimer"):
            assert residue not in article["text"]

    def test_whole_page_gives_the_article(self) -> None:
        """`process --html` on a whole news page extracts the article: no menus, comments or footer."""
        page = Path(__file__).resolve().parent / "fixtures" / "pages" / "whole_news_page.html"
        url = "https://www.coastalherald.example.co.uk/local/harbour-ferry-returns"
        result = _run(["process", "--html", str(page), "--url", url])
        assert result.returncode == 0, result.stderr
        article = json.loads(result.stdout)
        assert article["title"] == "Harbour ferry returns after winter refit"
        paragraphs = article["text"].split("\n\n")
        assert len(paragraphs) == 7 and paragraphs[0].startswith("The harbour ferry MV Selkie returned")
        for chrome in ("Log in", "Weather", "Trending", "Reply", "ago", "newsletter", "Share"):
            assert chrome not in article["text"]

    def test_jsonl_in_order(self) -> None:
        """`--jsonl` reads documents as JSON Lines and writes one article per line, in order."""
        docs = [
            {
                "title": "Ceasefire holds | Daily Example",
                "html": "<p>The ceasefire held overnight "
                "along the whole front line, officials said on Sunday morning.</p>",
                "url": "https://daily.example/a?utm_source=x",
                "feed_title": "Daily Example",
            },
            {
                "title": "Zweiter Artikel",
                "text": "Die Waffenruhe hielt in der Nacht an der gesamten "
                "Frontlinie, teilten Beamte am Sonntagmorgen mit.",
            },
        ]
        result = _run(["process", "--jsonl", "-"], stdin="\n".join(json.dumps(d) for d in docs))
        assert result.returncode == 0, result.stderr
        out = [json.loads(line) for line in result.stdout.splitlines()]
        assert [o["title"] for o in out] == ["Ceasefire holds", "Zweiter Artikel"]
        assert out[0]["url"] == "https://daily.example/a"
        assert [o["language"] for o in out] == ["en", "de"]

    @pytest.mark.parametrize(
        ("line", "problem"),
        [("not json", "not JSON"), ("[1, 2]", "JSON object"), ('{"title": "t", "html": 5}', "string")],
    )
    def test_jsonl_bad_line_is_a_clear_error(self, line: str, problem: str) -> None:
        """A bad line stops with its line number and the problem, exit status 2, no traceback."""
        result = _run(["process", "--jsonl", "-"], stdin='{"title": "a", "text": "b"}\n' + line + "\n")
        assert result.returncode == 2
        assert "line 2" in result.stderr and problem in result.stderr
        assert "Traceback" not in result.stderr


class TestSubscriptionsAndFeeds:
    def test_bad_query_refused_with_position(self, env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        """A query with an unbalanced parenthesis is refused, naming the position; nothing is stored."""
        code = main(
            ["subs", "add", "--query", "Armenia AND (ceasefire", "--webhook", "http://127.0.0.1:9/hook"]
        )
        assert code == 2
        assert "position" in capsys.readouterr().err
        main(["subs", "list", "--json"])
        assert capsys.readouterr().out == ""

    def test_subs_add_prints_id_and_secret(self, env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        """`subs add` prints the id and a whsec_ secret; `subs list --json` shows status, never the secret."""
        assert (
            main(
                [
                    "subs",
                    "add",
                    "--query",
                    "Armenia AND ceasefire",
                    "--webhook",
                    "http://127.0.0.1:9/hook",
                    "--name",
                    "armenia",
                ]
            )
            == 0
        )
        sub_id, secret = capsys.readouterr().out.split()
        assert sub_id.startswith("sub_") and secret.startswith("whsec_")
        main(["subs", "list", "--json"])
        listed = json.loads(capsys.readouterr().out)
        assert listed["id"] == sub_id and listed["status"] == "active" and "secret" not in listed

    def test_private_webhook_refused_by_default(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without INGEST_ALLOWED_NETWORKS a loopback webhook is refused with a reason."""
        monkeypatch.setenv("INGEST_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
        monkeypatch.delenv("INGEST_ALLOWED_NETWORKS", raising=False)
        assert main(["db", "upgrade"]) == 0
        capsys.readouterr()
        assert main(["subs", "add", "--query", "x", "--webhook", "http://127.0.0.1:9/hook"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ingest: error: webhook: refused") and "127.0.0.1" in err
        assert "fetch" not in err and len(err.splitlines()) == 1

    def test_feed_with_bad_scheme_refused(self, env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
        """A file:// feed URL is refused with a clear message."""
        assert main(["feeds", "add", "file:///etc/passwd"]) == 2
        assert "scheme" in capsys.readouterr().err


class TestSettings:
    def test_bad_setting_names_the_variable(self) -> None:
        """An invalid environment value stops the command with the variable's name."""
        result = _run(["settings"], env_extra={"INGEST_BATCH_SIZE": "lots"})
        assert result.returncode == 2
        assert "INGEST_BATCH_SIZE" in result.stderr

    def test_readme_table_matches_settings(self) -> None:
        """The README's configuration table is the one the settings module generates."""
        from ingest.settings import settings_table

        readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
        assert settings_table() in readme
