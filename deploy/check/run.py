"""The compose check: build the images, run the stack, push the seed article through it, break it.

Run by scripts/compose-check. Each step prints its time; the first step that fails stops the
check (status 1) with what was expected; the stack and its volumes are removed in every case.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from peers import FeedSite, Receiver, demo_items
from stack import CHECK_FILE, ROOT, CheckFailed, Stack, compose_command, docker, pinned_images

SUBNET = os.environ.get("CHECK_SUBNET", "172.29.87.0/24")
GATEWAY = SUBNET.rsplit(".", 1)[0] + ".1"
LATE = 30.0  # seconds a retry may come after its scheduled time (sweeps, polling, a busy host)
SEED, HARVEST, COPY, TRAM = (
    "nakka-2020-10-31-armenia",
    "nakka-2020-10-31-harvest",
    "https://caucasus-wire.example/world/moscow-pledges-help",
    "https://caucasus-wire.example/business/tbilisi-tram",
)
QUERIES = {"armenia": "Armenia AND Russia", "harvest": "harvest", "trams": "trams"}
STARTED = time.monotonic()
WALL_START = time.time()
NOT_RUN: list[str] = []


def say(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", flush=True)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    began = time.monotonic()
    yield
    say(f"{name}: ok ({time.monotonic() - began:.1f} s)")


def wait_for(what: str, test: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(1)
    raise CheckFailed(f"{what}: not after {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_images() -> dict[str, str]:
    """The pinned upstream images when they can be pulled, else stand-ins built from Debian packages."""
    pinned = pinned_images()
    needed = [pinned[v] for v in ("PYTHON_IMAGE", "REDIS_IMAGE", "POSTGRES_IMAGE", "PROMETHEUS_IMAGE")]
    if all(pull(image) for image in needed):
        say("base images: the pinned upstream images")
        return {}
    say("base images: no registry answers; building stand-ins from Debian packages (deploy/standin)")
    out = subprocess.run(
        [str(ROOT / "deploy" / "standin" / "build")], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise CheckFailed(f"deploy/standin/build: {out.stderr.strip()[-800:]}")
    return dict(line.split("=", 1) for line in out.stdout.split() if "=" in line)


def pull(image: str) -> bool:
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode == 0:
        return True
    return subprocess.run(["docker", "pull", "-q", image], capture_output=True, timeout=600).returncode == 0


def write_env(path: Path, images: dict[str, str], scale: int, ports: dict[str, int]) -> None:
    """The .env of the run: fresh secrets; the database password full of URL delimiters."""
    values = {
        "POSTGRES_PASSWORD": f"p@ss:w/o#r%d?{secrets.token_hex(6)}",
        "INGEST_API_TOKEN": secrets.token_hex(16),
        "RQ_DASHBOARD_PASSWORD": secrets.token_hex(8),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_hex(8),
        "INGEST_WORKERS": str(scale),
        "INGEST_POLLERS": str(min(scale, 2)),
        "CHECK_SUBNET": SUBNET,
        **{name: str(port) for name, port in ports.items()},
        **images,
    }
    if path.exists():  # keep the secrets across rewrites
        old = dict(line.split("=", 1) for line in path.read_text().splitlines())
        values.update({k: old[k].strip("'") for k in old if "PASSWORD" in k or "TOKEN" in k})
    path.write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))


def env_value(path: Path, name: str) -> str:
    for line in path.read_text().splitlines():
        if line.startswith(name + "="):
            return line.split("=", 1)[1].strip("'")
    raise KeyError(name)


class Run:
    """One pass of the check over one project."""

    def __init__(
        self, stack: Stack, api: httpx.Client, images: dict[str, str], ports: dict[str, int]
    ) -> None:
        self.stack, self.api, self.images, self.ports = stack, api, images, ports
        self.items = demo_items()
        self.feed: FeedSite | None = None
        self.receiver: Receiver | None = None
        self.subs: dict[str, str] = {}

    def timeline(self) -> str:
        """Each subscription's attempts: seconds since the check started, and the answer."""
        if self.receiver is None:
            return "nothing"
        return "; ".join(
            f"{name}: " + ", ".join(f"{a.at - WALL_START:.0f}s->{a.status}" for a in self.attempts_for(name))
            for name in QUERIES
        )

    def articles(self) -> list[dict[str, Any]]:
        answer = self.api.get("/articles", params={"limit": 200})
        answer.raise_for_status()
        return answer.json()["items"]  # type: ignore[no-any-return]

    def alerts(self) -> list[dict[str, Any]]:
        answer = self.api.get("/alerts", params={"limit": 200})
        answer.raise_for_status()
        return answer.json()["items"]  # type: ignore[no-any-return]

    def delivered_for(self, name: str) -> list[str]:
        assert self.receiver is not None
        return [
            a.webhook_id
            for a in self.receiver.delivered().values()
            if a.payload and a.payload["data"]["subscription_id"] == self.subs[name]
        ]

    def attempts_for(self, name: str) -> list[Any]:
        assert self.receiver is not None
        return [
            a
            for a in self.receiver.seen()
            if a.payload and a.payload["data"]["subscription_id"] == self.subs[name]
        ]

    def up(self) -> None:
        with step("build the images"):
            self.stack.run("build")
        with step("up: redis, postgres, migrate, poller, worker, sender, api, rq-dashboard"):
            self.stack.run("up", "-d")
            self.stack.wait_healthy(["redis", "postgres", "api", "rq-dashboard"], timeout=240)

    def subscribe(self) -> None:
        self.feed, self.receiver = FeedSite(GATEWAY), Receiver(GATEWAY)
        for name, query in QUERIES.items():
            answer = self.api.post(
                "/subscriptions", json={"name": name, "query": query, "webhook": self.receiver.url}
            )
            if answer.status_code != 201:
                raise CheckFailed(f"POST /subscriptions: {answer.status_code} {answer.text}")
            self.subs[name] = answer.json()["id"]
            self.receiver.secrets.append(answer.json()["secret"])
        self.feed.publish(self.items[SEED])
        answer = self.api.post("/feeds", json={"url": self.feed.url})
        if answer.status_code != 201:
            raise CheckFailed(f"POST /feeds: {answer.status_code} {answer.text}")

    def seed_alert(self) -> None:
        with step("the seed article reaches the receiver as a verified webhook"):
            wait_for(
                "a verified alert for the seed article", lambda: bool(self.delivered_for("armenia")), 300
            )

    def scale(self, env_file: Path) -> None:
        with step("scale to 3 workers and 2 pollers (INGEST_WORKERS, INGEST_POLLERS in .env)"):
            write_env(env_file, self.images, 3, self.ports)
            self.stack.run("up", "-d")
            wait_for("3 workers and 2 pollers", self.scaled, 120)

    def scaled(self) -> bool:
        return len(self.stack.containers("worker")) == 3 and len(self.stack.containers("poller")) == 2

    def break_things(self) -> None:
        assert self.feed is not None and self.receiver is not None
        self.receiver.failing = True
        self.feed.publish(self.items[HARVEST])
        self.feed.publish(self.items[COPY])
        with step("receiver failing: a delivery is tried and refused"):
            wait_for(
                "a refused attempt", lambda: any(a.status == 503 for a in self.attempts_for("harvest")), 180
            )
        with step("restart Redis mid-flow"):
            self.stack.run("restart", "redis")
            self.stack.wait_healthy(["redis"], timeout=60)
        with step("stop PostgreSQL for 20 s while a new article is published"):
            self.stack.run("stop", "postgres")
            self.feed.publish(self.items[TRAM])
            say("  published the tram article while PostgreSQL is down")
            time.sleep(20)
            self.stack.run("start", "postgres")
            self.stack.wait_healthy(["postgres"], timeout=60)
        self.receiver.failing = False
        with step("after the restarts every alert arrives"):
            wait_for(
                "verified alerts for harvest and trams",
                lambda: bool(self.delivered_for("harvest")) and bool(self.delivered_for("trams")),
                240,
            )

    def nothing_lost(self) -> None:
        with step(
            "nothing lost: 4 articles, the copy in the seed's story, one alert per story, all delivered"
        ):
            articles = self.articles()
            by_link = {a["url"].split("?")[0]: a for a in articles}
            if len(articles) != 4:
                raise CheckFailed(f"expected 4 articles, the API lists {len(articles)}: {sorted(by_link)}")
            stories = {a["story_id"] for a in articles}
            if len(stories) != 3:
                raise CheckFailed(f"expected 3 stories (the copy joins the seed's), got {len(stories)}")
            for name in QUERIES:
                if len(set(self.delivered_for(name))) != 1:
                    raise CheckFailed(
                        f"{name}: {len(set(self.delivered_for(name)))} alerts delivered, want 1"
                    )
            statuses = sorted(a["status"] for a in self.alerts())
            if statuses != ["delivered"] * 3:
                raise CheckFailed(f"alert statuses: {statuses}")

    def retries_on_time(self) -> None:
        schedule = [float(s) for s in check_env()["INGEST_WEBHOOK_RETRY_SCHEDULE"].split(",")]
        with step(f"retries on time after the restarts (each within its schedule + {LATE:.0f} s)"):
            for name in QUERIES:
                times = sorted(a.at for a in self.attempts_for(name))
                for n, (before, after) in enumerate(itertools.pairwise(times)):
                    late = after - before - schedule[min(n, len(schedule) - 1)]
                    if late > LATE:
                        raise CheckFailed(f"{name}: retry {n + 1} came {late:.0f} s after its scheduled time")
            refused = sum(1 for a in self.attempts_for("harvest") if a.status == 503)
            say(f"  harvest alert: {refused} refused attempts before its delivery")

    def dashboard(self) -> None:
        with step("rq-dashboard: basic auth, no password in argv or database settings in env, stops at once"):
            (container,) = self.stack.containers("rq-dashboard")
            info: Any = self.stack.inspect(container)
            argv = " ".join([*info["Path"].split(), *info["Args"]])
            password = env_value(self.stack.env_file, "RQ_DASHBOARD_PASSWORD")
            if password in argv or "--password" in argv:
                raise CheckFailed("rq-dashboard's password is on its command line")
            env = " ".join(info["Config"]["Env"])
            if "DATABASE" in env or env_value(self.stack.env_file, "POSTGRES_PASSWORD") in env:
                raise CheckFailed("rq-dashboard's environment holds database settings")
            url = f"http://127.0.0.1:{self.ports['RQ_DASHBOARD_PORT']}/0/data/queues.json"
            if (
                httpx.get(url).status_code != 401
                or httpx.get(url, auth=("admin", password)).status_code != 200
            ):
                raise CheckFailed("rq-dashboard does not answer 401 without and 200 with its password")
            began = time.monotonic()
            self.stack.run("stop", "rq-dashboard")
            if time.monotonic() - began > 8:
                raise CheckFailed(f"rq-dashboard took {time.monotonic() - began:.0f} s to stop")
            self.stack.run("start", "rq-dashboard")

    def monitoring(self) -> None:
        grafana = pull(self.images.get("GRAFANA_IMAGE", pinned_images()["GRAFANA_IMAGE"]))
        services = ["prometheus", "grafana"] if grafana else ["prometheus"]
        if not grafana:
            NOT_RUN.append(
                "Grafana: no registry answers and Grafana is not packaged by Debian, PyPI or npm; "
                "its dashboard's queries were run on Prometheus instead"
            )
        with step(
            f"monitoring profile: {', '.join(services)} scrape /metrics; the dashboard's queries answer"
        ):
            self.stack.run("up", "-d", *services, profiles=["monitoring"])
            self.stack.wait_healthy(services, timeout=120)
            prom = httpx.Client(base_url=f"http://127.0.0.1:{self.ports['PROMETHEUS_PORT']}", timeout=10)
            wait_for("a scrape of the API that is up", lambda: _scraped_up(prom), 90)
            for expr in dashboard_queries():
                answer = prom.get("/api/v1/query", params={"query": expr}).json()
                if answer.get("status") != "success":
                    raise CheckFailed(f"dashboard query {expr!r}: {answer}")
            stored = prom.get("/api/v1/query", params={"query": "ingest_articles_stored_total"}).json()
            if float(stored["data"]["result"][0]["value"][1]) < 4:
                raise CheckFailed(f"ingest_articles_stored_total in Prometheus: {stored}")
            if grafana:
                password = env_value(self.stack.env_file, "GRAFANA_ADMIN_PASSWORD")
                board = httpx.get(
                    f"http://127.0.0.1:{self.ports['GRAFANA_PORT']}/api/dashboards/uid/news-ingest",
                    auth=("admin", password),
                )
                if board.status_code != 200:
                    raise CheckFailed(f"Grafana has no provisioned dashboard: {board.status_code}")

    def down_up(self) -> None:
        with step("down and up again: data kept, 3 workers and 2 pollers kept"):
            self.stack.run("down", profiles=["monitoring"])
            self.stack.run("up", "-d")
            self.stack.wait_healthy(["api"], timeout=240)
            if len(self.articles()) != 4:
                raise CheckFailed(f"after down/up the API lists {len(self.articles())} articles, not 4")
            wait_for("3 workers and 2 pollers after down/up", self.scaled, 60)

    def heartbeats(self) -> None:
        with step("poller, workers and sender report healthy through their heartbeat"):
            self.stack.wait_healthy(
                ["poller", "worker", "sender"], timeout=180, count={"worker": 3, "poller": 2}
            )


def _scraped_up(prom: httpx.Client) -> bool:
    targets = prom.get("/api/v1/targets").json()["data"]["activeTargets"]
    return any(t["labels"]["job"] == "news-ingest" and t["health"] == "up" for t in targets)


def dashboard_queries() -> list[str]:
    board = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "news-ingest.json").read_text())
    return [target["expr"] for panel in board["panels"] for target in panel["targets"]]


def check_env() -> dict[str, str]:
    return yaml.safe_load(CHECK_FILE.read_text())["x-check-env"]  # type: ignore[no-any-return]


def main() -> int:
    command = compose_command()
    say(f"compose: {' '.join(command)}")
    project = f"ingestcheck{os.getpid()}"
    baseline = set(docker("volume", "ls", "-q").split())
    with tempfile.TemporaryDirectory() as tmp:
        env_file = Path(tmp) / ".env"
        ports = {
            n: free_port()
            for n in ("INGEST_API_PORT", "RQ_DASHBOARD_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT")
        }
        images = base_images()
        write_env(env_file, images, 1, ports)
        stack = Stack(command, project, env_file)
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{ports['INGEST_API_PORT']}",
            headers={"Authorization": f"Bearer {env_value(env_file, 'INGEST_API_TOKEN')}"},
            timeout=15,
        )
        run = Run(stack, api, images, ports)
        try:
            run.up()
            declared = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["volumes"]
            anonymous = stack.volumes() - baseline - {f"{project}_{name}" for name in declared}
            if anonymous:
                raise CheckFailed(f"volumes besides the named ones: {sorted(anonymous)}")
            run.subscribe()
            run.seed_alert()
            run.scale(env_file)
            run.break_things()
            run.nothing_lost()
            run.retries_on_time()
            run.dashboard()
            run.monitoring()
            run.down_up()
            run.heartbeats()
        except (CheckFailed, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
            say(f"FAILED: {exc}")
            say(f"receiver saw: {run.timeline()}")
            say(f"the services' logs: {save_logs(stack)}")
            failed = True
        else:
            failed = False
        finally:
            for peer in (run.feed, run.receiver):
                if peer is not None:
                    peer.close()
        failed = not tear_down(stack, project, baseline) or failed
    if failed:
        return 1
    for line in NOT_RUN:
        say(f"NOT RUN: {line}")
    say(f"compose check passed in {time.monotonic() - STARTED:.0f} s")
    return 0


def tear_down(stack: Stack, project: str, baseline: set[str]) -> bool:
    with step("tear down, volumes included"):
        stack.run("down", "-v", "--remove-orphans", profiles=["monitoring"])
        left = sorted(v for v in stack.volumes() - baseline if v.startswith(project))
    if left:
        say(f"FAILED: volumes left after down -v: {left}")
    return not left


def save_logs(stack: Stack) -> Path:
    path = Path(tempfile.gettempdir()) / f"{stack.project}.log"
    try:
        path.write_text(stack.run("logs", "--no-color", "--timestamps", timeout=120))
    except CheckFailed as exc:
        path.write_text(str(exc))
    return path


if __name__ == "__main__":
    sys.exit(main())
