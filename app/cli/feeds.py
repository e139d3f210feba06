"""`ingest feeds ...`: add (with discovery), list, remove, enable, import and export OPML."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.cli.common import runtime
from ingest.errors import ConfigError, FetchError, UnsafeURLError
from ingest.models import Feed, WebSubSubscription, iso

MIN_INTERVAL = 60


def _json_ready(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        k: iso(v) if hasattr(v, "tzinfo") else list(v) if isinstance(v, tuple) else v for k, v in obj.items()
    }


def feed_dict(feed: Feed, sub: WebSubSubscription | None = None) -> dict[str, Any]:
    """A feed's state as `feeds list --json` prints it (the WebSub secret left out)."""
    data = _json_ready(asdict(feed))
    data["websub"] = None
    if sub is not None:
        data["websub"] = {
            "hub": sub.hub,
            "topic": sub.topic,
            "state": sub.state,
            "lease_until": iso(sub.lease_until),
            "last_error": sub.last_error,
        }
    return data


def feeds_add(args: argparse.Namespace) -> int:
    """Add a feed; a web page URL is replaced by the feed it announces."""
    from ingest.feeds.discover import discover
    from ingest.fetch import make_client
    from ingest.net.guard import check_url

    ctx = runtime()
    if args.interval is not None and args.interval < MIN_INTERVAL:
        raise ConfigError(f"--interval must be at least {MIN_INTERVAL} seconds")
    check_url(args.url, ctx.settings.allowed_networks)
    url, title = args.url, None
    with make_client(ctx.settings) as client:
        try:
            found = discover(client, args.url, ctx.settings)
            url, title = found.url, found.title
            if found.from_page:
                print(f"ingest: found feed {found.url} on page {found.from_page}", file=sys.stderr)
        except UnsafeURLError:
            raise
        except FetchError as exc:  # the server is down now: add it anyway, the poller will retry
            print(f"ingest: warning: added without checking it is a feed: {exc.reason}", file=sys.stderr)
    feed = ctx.store.add_feed(
        url, interval=args.interval, title=title, fulltext=bool(getattr(args, "fulltext", False))
    )
    print(f"{feed.id}\t{feed.url}")
    return 0


def feeds_list(args: argparse.Namespace) -> int:
    ctx = runtime()
    for feed in ctx.store.list_feeds():
        if args.json:
            print(json.dumps(feed_dict(feed, ctx.store.get_websub(feed.id)), ensure_ascii=False))
            continue
        state = feed.muted_reason or feed.last_error or ("ok" if feed.last_success_at else "never polled")
        print(
            f"{feed.id}\t{feed.status}\t{feed.url}\t{feed.title or ''}\t{state}\t"
            f"next {iso(feed.next_poll_at) or 'now'}\t{feed.schedule_reason or ''}"
        )
    return 0


def feeds_remove(args: argparse.Namespace) -> int:
    runtime().store.remove_feed(args.feed_id)
    return 0


def feeds_enable(args: argparse.Namespace) -> int:
    """Resume polling a muted feed (410 Gone) now, with its error count reset."""
    feed = runtime().store.set_feed_status(args.feed_id, "active")
    print(f"{feed.id}\t{feed.url}\t{feed.status}")
    return 0


def feeds_import(args: argparse.Namespace) -> int:
    """Add every feed of an OPML file; unsafe or malformed URLs are skipped with a reason."""
    from ingest.feeds.discover import read_opml
    from ingest.net.guard import check_url

    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror}") from None
    outlines = read_opml(data)
    ctx = runtime()
    known = {f.url for f in ctx.store.list_feeds()}
    added = present = skipped = 0
    for outline in outlines:
        if outline.url in known:
            present += 1
            continue
        try:
            check_url(outline.url, ctx.settings.allowed_networks)
        except FetchError as exc:
            print(f"ingest: skipped {outline.url}: {exc.reason}", file=sys.stderr)
            skipped += 1
            continue
        feed = ctx.store.add_feed(outline.url, title=outline.title)
        print(f"{feed.id}\t{feed.url}")
        known.add(outline.url)
        added += 1
    print(f"ingest: imported {added} feeds ({present} already present, {skipped} skipped)", file=sys.stderr)
    return 0


def feeds_export(args: argparse.Namespace) -> int:
    from ingest.feeds.discover import write_opml

    sys.stdout.buffer.write(write_opml(runtime().store.list_feeds()))
    sys.stdout.flush()
    return 0


def add_parsers(sub: Any) -> None:
    """The `feeds` command and its actions (called from `app.cli.build_parser`)."""
    feeds = sub.add_parser("feeds", help="manage feeds").add_subparsers(dest="action", required=True)
    p = feeds.add_parser("add", help="add a feed by URL (a web page URL: the feed it links to)")
    p.add_argument("url")
    p.add_argument("--interval", type=int, metavar="SECONDS", help="fixed seconds between polls")
    p.add_argument(
        "--fulltext",
        action="store_true",
        help="fetch each article's page when the feed carries only a summary",
    )
    p.set_defaults(func=feeds_add)
    p = feeds.add_parser("list", help="list feeds and their fetch state")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=feeds_list)
    p = feeds.add_parser("remove", help="remove a feed")
    p.add_argument("feed_id", type=int)
    p.set_defaults(func=feeds_remove)
    p = feeds.add_parser("enable", help="resume polling a muted feed")
    p.add_argument("feed_id", type=int)
    p.set_defaults(func=feeds_enable)
    p = feeds.add_parser("import", help="add the feeds of an OPML file")
    p.add_argument("file", metavar="FILE.opml", help="OPML file, or - for stdin")
    p.set_defaults(func=feeds_import)
    p = feeds.add_parser("export", help="print every feed as OPML")
    p.set_defaults(func=feeds_export)
