"""docker-compose.yml is checked against the code it runs: commands, settings, health, rq-dashboard."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
import redis
import yaml
from rq import Worker

from app.cli import build_parser
from ingest.settings import ENV_NAMES
from tests.conftest import free_port
from workers.queues import RQBatchQueue

ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY_ENV = re.compile(r"^(POSTGRES|RQ_DASHBOARD)_[A-Z_]+$")
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")
INGEST_IMAGE = "news-ingest:latest"


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, with values from `env`."""

    def one(match: re.Match[str]) -> str:
        name, rest = match.group(1), match.group(0)[len(match.group(1)) + 2 : -1]
        if name in env:
            return env[name]
        if rest.startswith((":-", "-")):
            return rest.split("-", 1)[1]
        raise AssertionError(f"${{{name}}} has no default and no value in .env.example")

    return INTERPOLATION.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {key: value for key, value in pairs}


def rq_dashboard_command() -> click.Command:
    from rq_dashboard.cli import run

    return run


def test_every_service_runs_a_real_command(compose: dict[str, Any], dotenv: dict[str, str]) -> None:
    """Each service of the image runs an `ingest` command the CLI parses, or rq-dashboard's options."""
    services = compose["services"]
    assert {"redis", "postgres", "migrate", "poller", "worker", "api", "rq-dashboard"} <= set(services)
    parser = build_parser()
    for name, service in services.items():
        if service.get("image") != INGEST_IMAGE:
            continue
        argv = [interpolate(str(arg), dotenv) for arg in service["command"]]
        if service.get("entrypoint") == ["rq-dashboard"]:
            rq_dashboard_command().make_context("rq-dashboard", list(argv))  # raises on an unknown option
        else:
            assert "entrypoint" not in service, name  # the image's entrypoint is `ingest`
            args = parser.parse_args(argv)
            assert callable(args.func), name
    assert parser.parse_args(services["api"]["command"]).host == "0.0.0.0"


def test_migrate_command_runs(compose: dict[str, Any], tmp_path: Path) -> None:
    """The one-shot migration service's command really runs and prints the schema version."""
    from ingest.store.migrations import LATEST

    env = {
        "PATH": str(Path(sys.executable).parent),
        "INGEST_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ingest.db'}",
        "INGEST_LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *compose["services"]["migrate"]["command"]],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(LATEST)


def test_environment_is_read_by_the_settings_module(compose: dict[str, Any]) -> None:
    """Every variable a service sets is an ingest setting or a documented third-party one."""
    for name, service in compose["services"].items():
        for variable in service.get("environment") or {}:
            assert variable in ENV_NAMES or THIRD_PARTY_ENV.match(variable), f"{name}: {variable}"


def test_dotenv_example_names_known_variables(dotenv: dict[str, str]) -> None:
    """.env.example only names settings, third-party variables or the user agent the compose file reads."""
    for variable in dotenv:
        assert variable in ENV_NAMES or THIRD_PARTY_ENV.match(variable), variable


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    """depends_on waits for healthy services (or for the one-shot migration to finish)."""
    for name, service in compose["services"].items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if dependency == "migrate" else "service_healthy"
            assert rule == {"condition": expected}, f"{name} -> {dependency}"
            assert dependency == "migrate" or "healthcheck" in compose["services"][dependency]


def test_redis_persists_and_services_restart(compose: dict[str, Any]) -> None:
    """Redis keeps an append-only file synced every second on a volume; long-running services restart."""
    redis_service = compose["services"]["redis"]
    command = redis_service["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert any(volume.endswith(":/data") for volume in redis_service["volumes"])
    for name, service in compose["services"].items():
        assert service.get("restart") == ("no" if name == "migrate" else "unless-stopped"), name


def test_rq_dashboard_requires_basic_auth_and_stays_on_loopback(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    """rq-dashboard gets a username and a password and is published on 127.0.0.1 only."""
    service = compose["services"]["rq-dashboard"]
    params = (
        rq_dashboard_command()
        .make_context("rq-dashboard", [interpolate(a, dotenv) for a in service["command"]])
        .params
    )
    assert params["username"] and params["password"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert all(port.startswith("127.0.0.1:") for port in compose["services"]["api"]["ports"])


def dashboard_argv(compose: dict[str, Any], redis_url: str, port: int) -> list[str]:
    """The compose command with this machine's Redis, a loopback port and known credentials."""
    replace = {
        "--redis-url": redis_url,
        "--bind": "127.0.0.1",
        "--port": str(port),
        "--username": "admin",
        "--password": "s3cret",
    }
    argv = list(compose["services"]["rq-dashboard"]["command"])
    for flag, value in replace.items():
        argv[argv.index(flag) + 1] = value
    return argv


@pytest.fixture()
def dashboard(compose: dict[str, Any], redis_url: str, tmp_path: Path) -> Iterator[str]:
    """rq-dashboard started as the compose file starts it, as a subprocess; its base URL."""
    port = free_port()
    executable = Path(sys.executable).parent / "rq-dashboard"
    log = tmp_path / "rq-dashboard.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(executable), *dashboard_argv(compose, redis_url, port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"rq-dashboard exited: {log.read_text()[-2000:]}")
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait()


def test_rq_dashboard_shows_queues_and_workers_behind_basic_auth(
    dashboard: str, redis_client: redis.Redis
) -> None:
    """Without credentials 401; with them the ingest queue and a worker show."""
    ingest_queue = RQBatchQueue(redis_client, prefix="t:", queue_prefix="", job_timeout=60).queue
    ingest_queue.enqueue("builtins.len", [1])
    worker = Worker([ingest_queue], connection=redis_client, name="compose-test-worker")
    worker.register_birth()
    try:
        assert httpx.get(dashboard + "/").status_code == 401
        assert httpx.get(dashboard + "/0/data/queues.json", auth=("admin", "wrong")).status_code == 401
        queues = httpx.get(dashboard + "/0/data/queues.json", auth=("admin", "s3cret"))
        assert queues.status_code == 200
        names = {q["name"] for q in queues.json()["queues"]}
        assert "ingest" in names
        workers = httpx.get(dashboard + "/0/data/workers.json", auth=("admin", "s3cret")).json()["workers"]
        assert any(w["name"] == "compose-test-worker" and set(w["queues"]) == {"ingest"} for w in workers)
    finally:
        worker.register_death()
