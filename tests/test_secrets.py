"""Secrets: read from the environment or from `<NAME>_FILE`, placeholders refused, never printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.settings import ENV_NAMES, SETTINGS, Setting, Settings

SECRETS = [s for s in SETTINGS if s.secret]
AWKWARD = "p@ss:w/o#r%d 'q\" $HOME `x`"  # every character a URL or a shell would mangle


def run_settings(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "INGEST_DATA_DIR": str(tmp_path), "INGEST_LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "settings"],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_the_secret_settings() -> None:
    """The API token, the database password and rq-dashboard's password are secrets, with a _FILE name."""
    assert {s.env for s in SECRETS} == {
        "INGEST_API_TOKEN",
        "INGEST_DATABASE_PASSWORD",
        "RQ_DASHBOARD_PASSWORD",
    }
    assert {f"{s.env}_FILE" for s in SECRETS} <= ENV_NAMES


@pytest.mark.parametrize("setting", SECRETS, ids=lambda s: s.env)
def test_secret_read_from_file(setting: Setting, tmp_path: Path) -> None:
    """`<NAME>_FILE` names a file whose text (less its final newline) is the value."""
    path = tmp_path / "secret"
    path.write_text(AWKWARD + "\n", encoding="utf-8")
    settings = Settings.from_env({f"{setting.env}_FILE": str(path)})
    assert getattr(settings, setting.field) == AWKWARD


def test_secret_file_errors_are_one_line(tmp_path: Path) -> None:
    """A missing file, a value given twice, a placeholder: each is a ConfigError naming the variable."""
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=r"INGEST_API_TOKEN_FILE=.*nope: cannot read it"):
        Settings.from_env({"INGEST_API_TOKEN_FILE": str(missing)})
    (tmp_path / "token").write_text("a-real-token")
    with pytest.raises(ConfigError, match="set INGEST_API_TOKEN or INGEST_API_TOKEN_FILE, not both"):
        Settings.from_env({"INGEST_API_TOKEN": "x", "INGEST_API_TOKEN_FILE": str(tmp_path / "token")})
    (tmp_path / "placeholder").write_text("change-me-too\n")
    with pytest.raises(ConfigError, match="RQ_DASHBOARD_PASSWORD is a placeholder"):
        Settings.from_env({"RQ_DASHBOARD_PASSWORD_FILE": str(tmp_path / "placeholder")})


def test_placeholder_refused_by_the_cli(tmp_path: Path) -> None:
    """A command started with a placeholder secret stops with one line on stderr and status 2."""
    done = run_settings({"INGEST_DATABASE_PASSWORD": "CHANGE-ME"}, tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "ingest: error: INGEST_DATABASE_PASSWORD is a placeholder (from .env.example or "
        "`ingest settings`): set a real secret"
    ]


def test_settings_redacts_secrets_and_url_passwords(tmp_path: Path) -> None:
    """Neither a secret nor a password inside a URL is printed; unset secrets print empty."""
    done = run_settings(
        {
            "INGEST_API_TOKEN": "tok-1234567890",
            "DATABASE_URL": "postgresql://ingest:hunter2@db:5432/ingest",
            "REDIS_URL": "redis://:s3cret@redis:6379/0",
        },
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    for secret in ("tok-1234567890", "hunter2", "s3cret"):
        assert secret not in done.stdout
    lines = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert lines["INGEST_API_TOKEN"] == "'<redacted>'"
    assert lines["DATABASE_URL"] == "'postgresql://ingest:<redacted>@db:5432/ingest'"
    assert lines["REDIS_URL"] == "'redis://:<redacted>@redis:6379/0'"
    assert lines["INGEST_DATABASE_PASSWORD"] == ""


def test_settings_output_is_a_reusable_env_file(tmp_path: Path) -> None:
    """Sourced by a shell, the output gives the same settings again (values with spaces, commas, quotes)."""
    first = run_settings(
        {
            "INGEST_USER_AGENT": 'bot/1.0 (+https://ex.org/contact; it\'s "us")',
            "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8, 10.0.0.0/8",
            "INGEST_WEBHOOK_RETRY_SCHEDULE": "1,2.5",
            "INGEST_METRICS_PUBLIC": "yes",
        },
        tmp_path,
    )
    assert first.returncode == 0, first.stderr
    env_file = tmp_path / "settings.env"
    env_file.write_text(first.stdout)
    again = subprocess.run(
        ["bash", "-c", f'set -a; . "{env_file}"; set +a; exec "{sys.executable}" -m app.cli settings'],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert "INGEST_METRICS_PUBLIC=1\n" in first.stdout
    assert "INGEST_ALLOWED_NETWORKS=127.0.0.0/8,10.0.0.0/8\n" in first.stdout


def test_postgres_password_passed_apart_from_the_url(postgres_url: str) -> None:
    """A password full of URL delimiters reaches the driver as given, and the URL stays without it."""
    from ingest.store import open_store
    from ingest.store.postgres import PostgresStore

    store = open_store(postgres_url, AWKWARD)
    try:
        assert isinstance(store, PostgresStore)
        assert store._conn.info.password == AWKWARD
        assert AWKWARD not in store.url
    finally:
        store.close()
