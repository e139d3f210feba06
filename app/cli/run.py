"""The long-running roles: `ingest poll`, `ingest worker`, `ingest send`, and `ingest health`.

Each stops on SIGTERM or Ctrl-C in every state (Redis or the database down, a receiver
hanging): the first signal asks, the second insists, and Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import os
import signal

from app.cli.common import emit, runtime
from app.lifecycle import HEARTBEAT_ENV, Liveness, exit_when_done, heartbeat_age
from ingest.errors import ConfigError
from workers.stop import Stop


def _exit_code(stop: Stop) -> int:
    return 128 + signal.SIGINT if stop.signal == signal.SIGINT else 0


def poll(args: argparse.Namespace) -> int:
    from app.poller import poll_once, run_poller

    if args.once:
        emit(poll_once(runtime(), only_due=False).as_dict())
        return 0
    stop = Stop()
    stop.install()
    rt = runtime()
    try:
        run_poller(rt, stop.event, beat=Liveness())
    finally:
        rt.close()
    return exit_when_done(_exit_code(stop))


def worker(args: argparse.Namespace) -> int:
    from workers import jobs
    from workers.worker import run_worker

    stop = Stop()
    stop.install()  # before the models load: a stop while loading is honoured too
    rt = runtime()
    jobs.bind(lambda: rt.batch_runner)
    rt.batch_runner  # noqa: B018 - load the models now, not inside the first job's timeout
    liveness = Liveness()

    def beat() -> None:
        liveness()
        rt.metrics.flush()

    try:
        run_worker(rt.batch_queue.queue, prefix=rt.settings.redis_prefix, burst=args.burst, stop=stop,
                   on_beat=beat)  # fmt: skip
    finally:
        rt.close()
    return exit_when_done(_exit_code(stop))


def send(args: argparse.Namespace) -> int:
    from app.sender import run_sender

    stop = Stop()
    stop.install()
    rt = runtime()
    try:
        attempts = run_sender(rt, stop.event, burst=args.burst, beat=Liveness())
    finally:
        rt.close()
    if args.burst:
        emit({"attempts": attempts})
    return exit_when_done(_exit_code(stop))


def health(args: argparse.Namespace) -> int:
    """Exit 0 when this container's role touched its heartbeat file recently, 1 (with why) if not."""
    path = os.environ.get(HEARTBEAT_ENV, "")
    if not path:
        raise ConfigError(f"{HEARTBEAT_ENV} is not set: there is no heartbeat to check")
    age = heartbeat_age(path)
    if age is None:
        print(f"unhealthy: no heartbeat yet ({path} does not exist)")
        return 1
    if age > args.max_age:
        print(f"unhealthy: last heartbeat {age:.0f}s ago (more than {args.max_age:g}s)")
        return 1
    print(f"healthy: last heartbeat {age:.1f}s ago")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("poll", help="run the poller")
    p.add_argument("--once", action="store_true", help="poll every feed once now, queue what is new, exit")
    p.set_defaults(func=poll)
    p = sub.add_parser("worker", help="run an RQ worker on the ingest queue")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.set_defaults(func=worker)
    p = sub.add_parser("send", help="run the webhook sender (deliveries, retries, digests)")
    p.add_argument("--burst", action="store_true", help="deliver what is due now, then exit")
    p.set_defaults(func=send)
    p = sub.add_parser("health", help=f"check the heartbeat file ({HEARTBEAT_ENV}) of this role")
    p.add_argument("--max-age", type=float, default=60.0, metavar="SECONDS",
                   help="oldest heartbeat that counts as alive (default 60)")  # fmt: skip
    p.set_defaults(func=health)
