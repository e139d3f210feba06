"""The `ingest` command. Results go to stdout, logs and progress to stderr.

Command names and flags are a contract: scripts call them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ingest.errors import IngestError
from ingest.log import configure_logging
from ingest.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    from app.cli import alerts, commands, feeds, run, subs, up
    from app.cli import api as api_cmd

    parser = argparse.ArgumentParser(prog="ingest", description="Streaming news ingestion service.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    feeds.add_parsers(sub)  # feeds add | list | remove | enable | import | export

    subs.add_parsers(sub)  # subs add | list | pause | resume | rotate-secret | remove
    alerts.add_parsers(sub)  # alerts failed | replay | sweep

    run.add_parsers(sub)  # poll | worker | send | health

    p = sub.add_parser("process", help="clean and language-tag one document, print it as JSON")
    p.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    p.add_argument("--title", help="title (default: the first line of a text document)")
    p.add_argument("--url")
    p.add_argument("--html", action="store_true", help="the document is HTML")
    p.add_argument("--jsonl", action="store_true", help="JSON Lines in, one article per line out")
    p.set_defaults(func=commands.process)

    arts = sub.add_parser("articles", help="stored articles").add_subparsers(dest="action", required=True)
    p = arts.add_parser("list", help="newest first")
    p.add_argument("--json", action="store_true", help="JSON Lines with the webhook's article fields")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=commands.articles_list)

    p = sub.add_parser("match", help="match one document against a query, print the result as JSON")
    p.add_argument("query")
    p.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    p.add_argument("--title", default="")
    p.set_defaults(func=commands.match)

    p = sub.add_parser("up", help="poller, workers and rq-dashboard in one process tree")
    p.add_argument("--demo", action="store_true", help="also serve demo feeds and a demo webhook receiver")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--dashboard-port", type=int, default=9181)
    p.set_defaults(func=up.up)

    p = sub.add_parser("api", help="serve the HTTP API (needs INGEST_API_TOKEN unless on loopback)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.set_defaults(func=api_cmd.api)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    p = db.add_parser("upgrade", help="apply pending schema migrations, print the schema version")
    p.set_defaults(func=commands.db_upgrade)

    p = sub.add_parser("settings", help="print the environment variables the service reads")
    p.add_argument("--markdown", action="store_true", help="as the README's Markdown table")
    p.set_defaults(func=commands.settings_cmd)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(Settings.from_env())  # logs to stderr before anything can log to stdout
        return int(args.func(args) or 0)
    except IngestError as exc:
        print(f"ingest: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
