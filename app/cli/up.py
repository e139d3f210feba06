"""`ingest up [--demo]`: poller, workers and rq-dashboard as one process tree; Ctrl-C stops all."""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from ingest.log import get_logger
from ingest.models import Subscription, utcnow
from ingest.settings import Settings
from workers.stop import Stop

log = get_logger(__name__)

DEMO_QUERIES = (
    ("Armenia ceasefire (en)", "Armenia AND ceasefire"),
    ("Karabakh, English or German", "(Armenia OR Armenien) AND (ceasefire OR Waffenruhe)"),
)
DEMO_SECRET = "whsec_ZGVtby1zZWNyZXQtb2YtdGhlLWxvb3BiYWNrLXJlY2VpdmVy"


def _child_env(settings: Settings, redis_url: str, demo: bool) -> dict[str, str]:
    env = dict(os.environ, REDIS_URL=redis_url, INGEST_DATA_DIR=str(settings.data_dir))
    if demo:
        allowed = os.environ.get("INGEST_ALLOWED_NETWORKS", "")
        env["INGEST_ALLOWED_NETWORKS"] = ",".join(filter(None, [allowed, "127.0.0.0/8"]))
        env.setdefault("INGEST_LOG_LEVEL", "warning")  # let the ALERT lines stand out
    return env


def _print_alert(payload: dict[str, Any]) -> None:
    data = payload["data"]
    article = data["article"]
    print(
        f"ALERT  {data['subscription_name']!r} <- [{article['language']}] {article['title']}"
        f"  (story {article['story_id']}, terms {', '.join(data['matched_terms'])})",
        flush=True,
    )


def _setup_demo(ctx: Any) -> list[Any]:
    """Serve demo feeds and a receiver, register them; returns the servers to close."""
    from app.demo import FeedServer, Receiver

    feeds = FeedServer()
    receiver = Receiver(DEMO_SECRET, _print_alert)
    wanted = {feeds.url(path) for path in feeds.paths}
    for feed in ctx.store.list_feeds():
        if "/demo/" in feed.url and feed.url not in wanted:
            ctx.store.remove_feed(feed.id)  # a demo feed from an earlier run on another port
    for url in sorted(wanted):
        ctx.store.add_feed(url)
    existing = {s.query: s for s in ctx.store.list_subscriptions()}
    for name, query in DEMO_QUERIES:
        sub = existing.get(query)
        if sub is not None and sub.webhook != receiver.url("/hook"):
            ctx.store.remove_subscription(sub.id)
            sub = None
        if sub is None:
            ctx.store.add_subscription(
                Subscription(
                    id="sub_demo_" + hashlib.sha256(query.encode()).hexdigest()[:10],
                    name=name,
                    query=query,
                    webhook=receiver.url("/hook"),
                    secret=DEMO_SECRET,
                    created_at=utcnow(),
                )
            )
    print(f"demo feeds: {', '.join(sorted(wanted))}\ndemo receiver: {receiver.url('/hook')}", flush=True)
    return [feeds, receiver]


def up(args: argparse.Namespace) -> int:
    """Start the process tree; stop it all on Ctrl-C/SIGTERM, or when a child dies (exit 1, naming it)."""
    from app.runtime import Runtime

    if args.demo:
        allowed = os.environ.get("INGEST_ALLOWED_NETWORKS", "")
        os.environ["INGEST_ALLOWED_NETWORKS"] = ",".join(filter(None, [allowed, "127.0.0.0/8"]))
    rt = Runtime.from_env()
    servers = _setup_demo(rt) if args.demo else []
    env = _child_env(rt.settings, rt.redis_url, args.demo)
    children = {name: subprocess.Popen(cmd, env=env) for name, cmd in _commands(args, rt.redis_url)}
    print(f"rq-dashboard: http://127.0.0.1:{args.dashboard_port}/  (Ctrl-C stops everything)", flush=True)
    stop = Stop()
    stop.install()
    died = _watch(children, stop)
    _stop_all(list(children.values()))
    for server in servers:
        server.close()
    rt.close()
    if died is not None:
        name, code = died
        print(f"ingest: error: {name} exited with status {code}; everything was stopped", file=sys.stderr)
        return 1
    return 128 + signal.SIGINT if stop.signal == signal.SIGINT else 0


def _commands(args: argparse.Namespace, redis_url: str) -> list[tuple[str, list[str]]]:
    ingest = [sys.executable, "-m", "app.cli"]
    dashboard = [sys.executable, "-m", "rq_dashboard", "--bind", "127.0.0.1", "--port",
                 str(args.dashboard_port), "--redis-url", redis_url, "--json"]  # fmt: skip
    workers = [(f"worker-{n + 1}", [*ingest, "worker"]) for n in range(args.workers)]
    return [("poller", [*ingest, "poll"]), *workers, ("sender", [*ingest, "send"]),
            ("rq-dashboard", dashboard)]  # fmt: skip


def _watch(children: dict[str, subprocess.Popen[bytes]], stop: Stop) -> tuple[str, int] | None:
    """Wait for a stop request or a child's death; the dead child's name and status, if one died."""
    while not stop:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                return name, code
        stop.event.wait(0.5)
    return None


def _stop_all(children: list[subprocess.Popen[bytes]], grace: float = 15.0) -> None:
    """SIGTERM every child; a child still running after `grace` seconds is killed."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
