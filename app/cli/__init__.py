"""The `ingest` command. Results go to stdout, logs and progress to stderr.

Command names and flags are a contract: scripts call them. Every failure is one line on stderr
and exit status 2 (the traceback too with INGEST_LOG_LEVEL=debug); Ctrl-C exits 130; a closed
stdout (`ingest ... --json | head`) ends the command quietly with status 141, as SIGPIPE would.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata

from ingest.errors import IngestError, QueryError
from ingest.log import configure_logging
from ingest.settings import Settings, sqlite_path

# commands that may create the database; the others refuse a SQLite file that does not exist
CREATES_DATABASE = frozenset(
    {"db upgrade", "up", "poll", "worker", "send", "api", "feeds add", "feeds import"}
)
USES_DATABASE = frozenset({"feeds", "subs", "alerts", "articles", "stories"})
# one-shot commands that need Redis at once: refused in one line when REDIS_URL does not answer
NEEDS_REDIS = frozenset({"alerts sweep", "worker --burst", "send --burst", "poll --once"})


def _version() -> str:
    try:
        return metadata.version("news-ingest")
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    from app.cli import alerts, commands, feeds, reading, run, subs, up
    from app.cli import api as api_cmd

    parser = argparse.ArgumentParser(prog="ingest", description="Streaming news ingestion service.")
    parser.add_argument("--version", action="version", version=f"ingest (news-ingest) {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    feeds.add_parsers(sub)  # feeds add | list | edit | refresh | remove | enable | import | export
    subs.add_parsers(sub)  # subs add | list | edit | pause | resume | rotate-secret | remove
    alerts.add_parsers(sub)  # alerts list | failed | replay | status | sweep
    reading.add_parsers(sub)  # articles list | show, stories list | show
    run.add_parsers(sub)  # poll | worker | send | health
    commands.add_parsers(sub)  # process | match | db upgrade | settings

    p = sub.add_parser("up", help="poller, workers and rq-dashboard in one process tree")
    p.add_argument("--demo", action="store_true", help="also serve demo feeds and a demo webhook receiver")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="with --demo: remove the demo's feeds, subscriptions and alerts first, to see it again",
    )
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--dashboard-port", type=int, default=9181)
    p.set_defaults(func=up.up)

    p = sub.add_parser("api", help="serve the HTTP API (needs INGEST_API_TOKEN unless on loopback)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=api_cmd.api)
    return parser


def _names(args: argparse.Namespace) -> set[str]:
    """`feeds add`, `worker --burst`...: how the command is named in the sets above."""
    names = {args.command, f"{args.command} {getattr(args, 'action', '')}".strip()}
    names |= {f"{args.command} --{flag}" for flag in ("burst", "once") if getattr(args, flag, False)}
    return names


def check_database(settings: Settings, names: set[str]) -> None:
    """A mistyped data directory or SQLite path must not silently start an empty database."""
    url = settings.effective_database_url
    if names & CREATES_DATABASE or not names & USES_DATABASE or not url.startswith("sqlite:"):
        return
    path = sqlite_path(url)
    if not path.exists():
        where = "DATABASE_URL" if settings.database_url else "INGEST_DATA_DIR"
        raise IngestError(f"no database at {path} (check {where}); `ingest db upgrade` creates one there")


def check_redis(settings: Settings, names: set[str]) -> None:
    """One-shot commands fail at once, in one line, when REDIS_URL does not answer."""
    if not settings.redis_url or not names & NEEDS_REDIS:
        return
    import redis

    from ingest.clean.url import redact_url

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise IngestError(f"Redis at {redact_url(settings.redis_url)} does not answer: {exc}") from None
    finally:
        client.close()


def _fail(message: str, exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"ingest: error: {message}", file=sys.stderr)
    return 2


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, QueryError):
        return f"query: {exc.reason} at position {exc.position}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _broken_pipe() -> int:
    """stdout was closed by its reader: no more output, no 'Exception ignored' at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def main(argv: Sequence[str] | None = None) -> int:
    debug = os.environ.get("INGEST_LOG_LEVEL", "").lower() == "debug"
    try:
        args = build_parser().parse_args(argv)
        settings = Settings.from_env()
        configure_logging(settings)  # logs to stderr before anything can log to stdout
        names = _names(args)
        check_database(settings, names)
        check_redis(settings, names)
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except IngestError as exc:
        return _fail(_one_line(exc), exc, debug)
    except Exception as exc:  # one line for anything unforeseen too; the traceback with debug
        name = type(exc).__name__
        hint = "" if debug else " (INGEST_LOG_LEVEL=debug shows the traceback)"
        return _fail(f"{name}: {_one_line(exc)}{hint}", exc, debug)


if __name__ == "__main__":
    sys.exit(main())
