"""Driving one Compose project from the compose check: commands, containers, health, volumes."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CHECK_FILE = ROOT / "deploy" / "check" / "compose.check.yml"


class CheckFailed(Exception):
    """One thing the stack did not do; the message says what."""


def compose_command() -> list[str]:
    """`docker compose` (v2) when the plugin answers, else Debian's `docker-compose` (v1.29)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if v2.returncode == 0 else ["docker-compose"]


def pinned_images() -> dict[str, str]:
    """VARIABLE -> pinned default, as docker-compose.yml writes them: `${REDIS_IMAGE:-redis:7.4.1-alpine}`."""
    text = COMPOSE_FILE.read_text()
    return dict(re.findall(r"\$\{(\w+_IMAGE):-([^}]+)\}", text))


def docker(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise CheckFailed(f"docker {' '.join(args)}: {done.stderr.strip()[-500:]}")
    return done.stdout


@dataclass
class Stack:
    """One project: its compose command, env file and name."""

    command: list[str]
    project: str
    env_file: Path
    profiles: Sequence[str] = ()
    log: list[str] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 900, profiles: Sequence[str] = ()) -> str:
        argv = [*self.command, "-p", self.project, "--env-file", str(self.env_file)]
        argv += ["-f", str(COMPOSE_FILE), "-f", str(CHECK_FILE)]
        for profile in profiles:
            argv += ["--profile", profile]
        done = subprocess.run(
            [*argv, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
        )
        if done.returncode != 0:
            raise CheckFailed(f"{' '.join(args)}: {done.stderr.strip()[-1500:]}")
        return done.stdout

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers."""
        out = docker(
            "ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        )  # fmt: skip
        return out.split()

    def inspect(self, container: str) -> dict[str, object]:
        return json.loads(docker("inspect", container))[0]  # type: ignore[no-any-return]

    def health(self, service: str) -> list[str]:
        """Health status of each running container of the service."""
        return [
            docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}", c).strip()
            for c in self.containers(service)
        ]

    def wait_healthy(
        self, services: Sequence[str], timeout: float, count: dict[str, int] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout
        state: dict[str, list[str]] = {}
        while time.monotonic() < deadline:
            state = {s: self.health(s) for s in services}
            want = count or {}
            if all(
                v and all(h == "healthy" for h in v) and len(v) >= want.get(s, 1) for s, v in state.items()
            ):
                return
            time.sleep(2)
        raise CheckFailed(f"not healthy after {timeout:.0f} s: {state}")

    def volumes(self) -> set[str]:
        return set(docker("volume", "ls", "-q").split())
