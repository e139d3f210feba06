"""Every long-running process stops on SIGTERM within seconds, whatever state it is in.

Real `ingest poll`, `ingest worker`, `ingest send` and `ingest up` processes: with Redis gone
from the start, with Redis killed while they run, and with a receiver that never answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.settings import Settings
from testkit.rig import Valkey, wait_for
from tests.conftest import free_port

STOP_WITHIN = 8.0  # seconds from SIGTERM to exit


def _env(settings: Settings, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, INGEST_DATA_DIR=str(settings.data_dir), REDIS_URL=redis_url,
                INGEST_ALLOWED_NETWORKS="127.0.0.0/8", INGEST_LOG_FORMAT="json", INGEST_LOG_LEVEL="info",
                INGEST_HEARTBEAT_FILE=str(tmp_path / "alive"))  # fmt: skip


class Process:
    """One `python -m app.cli ARGS` with its log; killed at the end if still alive."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env,
                                     stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        """Send `sig`; the exit status and the seconds it took."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture()
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


ROLES = [["poll"], ["worker"], ["send"]]


@pytest.mark.slow
@pytest.mark.parametrize("args", ROLES, ids=lambda a: a[0])
def test_stops_with_redis_unreachable_from_the_start(
    settings: Settings, tmp_path: Path, processes: list[Process], args: list[str]
) -> None:
    """Redis never answers: the role keeps trying (it does not exit on its own), then SIGTERM ends it."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    process = Process(args, _env(settings, dead, tmp_path), tmp_path / "role.log")
    processes.append(process)
    time.sleep(6)  # models loaded, connection attempts failing
    assert process.proc.poll() is None, process.text()
    code, seconds = process.stop()
    assert code == 0 and seconds < STOP_WITHIN, process.text()


@pytest.fixture()
def valkey(tmp_path: Path) -> Iterator[Valkey]:
    server = Valkey(tmp_path / "valkey")
    server.start()
    yield server
    server.kill()


def _running(args: list[str], settings: Settings, valkey: Valkey, tmp_path: Path,
             processes: list[Process]) -> Process:  # fmt: skip
    """`ingest ARGS` started on `valkey`, once its main loop has beaten."""
    process = Process(args, _env(settings, valkey.url, tmp_path), tmp_path / "role.log")
    processes.append(process)
    wait_for(lambda: (tmp_path / "alive").exists(), 60, process.text)
    return process


@pytest.mark.slow
@pytest.mark.parametrize("args", ROLES, ids=lambda a: a[0])
def test_stops_after_redis_dies_under_it(
    settings: Settings, tmp_path: Path, processes: list[Process], valkey: Valkey, args: list[str]
) -> None:
    """Redis killed while the role runs: SIGTERM still ends it within seconds."""
    process = _running(args, settings, valkey, tmp_path, processes)
    valkey.kill()
    time.sleep(3)
    code, seconds = process.stop()
    assert code == 0 and seconds < STOP_WITHIN, process.text()


@pytest.mark.slow
@pytest.mark.parametrize("forwarded", [False, True], ids=["ctrl-c", "ctrl-c+forwarded-sigterm"])
@pytest.mark.parametrize("args", ROLES, ids=lambda a: a[0])
def test_ctrl_c_exits_130(
    settings: Settings, tmp_path: Path, processes: list[Process], valkey: Valkey, args: list[str],
    forwarded: bool,
) -> None:  # fmt: skip
    """SIGINT (Ctrl-C) ends a role with status 130, as shells expect; the SIGTERM `ingest up`
    forwards just after it (Ctrl-C reaches the whole group) is the same stop: no traceback."""
    process = _running(args, settings, valkey, tmp_path, processes)
    if forwarded:
        process.proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    code, seconds = process.stop(signal.SIGTERM if forwarded else signal.SIGINT)
    assert code == 130 and seconds < STOP_WITHIN, process.text()
    assert "Traceback" not in process.text() and "Exception ignored" not in process.text()


@pytest.mark.slow
def test_up_says_which_child_died_and_exits_non_zero(
    settings: Settings, tmp_path: Path, processes: list[Process], valkey: Valkey
) -> None:
    """`ingest up` whose rq-dashboard cannot bind its port stops everything and names the child."""
    import socket

    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        env = _env(settings, valkey.url, tmp_path)
        process = Process(["up", "--workers", "1", "--dashboard-port", str(port)], env, tmp_path / "up.log")
        processes.append(process)
        code = process.proc.wait(timeout=90)
        assert code == 1, process.text()
        assert "rq-dashboard exited with status" in process.text()
    finally:
        taken.close()
