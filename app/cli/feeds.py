"""`ingest feeds ...`: add (with discovery), list, edit, refresh, remove, enable, import and export OPML.

Each action is a use case of `ingest.services.usecases.feeds`, the same the API calls.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.cli.common import emit, feeds, row, runtime, say
from ingest.errors import ConfigError
from ingest.models import Feed, WebSubSubscription, iso
from ingest.services.usecases.requests import FeedChange, NewFeed, parse
from ingest.services.usecases.views import to_builtins


def feed_dict(feed: Feed, sub: WebSubSubscription | None = None) -> dict[str, Any]:
    """A feed's state as `feeds list --json` prints it (the WebSub secret left out)."""
    data: dict[str, Any] = to_builtins(feed)
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
    req = parse(
        NewFeed, {"url": args.url, "interval": args.interval, "fulltext": args.fulltext, "name": args.name}
    )
    added = feeds(runtime()).add(req, discover=True)
    if added.found_on:
        print(f"ingest: found feed {added.feed.url} on page {added.found_on}", file=sys.stderr)
    if added.warning:
        print(f"ingest: warning: {added.warning}", file=sys.stderr)
    row(added.feed.id, added.feed.url)
    return 0


def feeds_list(args: argparse.Namespace) -> int:
    rt = runtime()
    for feed in rt.store.list_feeds():
        if args.json:
            emit(feed_dict(feed, rt.store.get_websub(feed.id)))
            continue
        state = feed.muted_reason or feed.last_error or ("ok" if feed.last_success_at else "never polled")
        row(
            feed.id,
            feed.status,
            feed.url,
            feed.title,
            state,
            f"next {iso(feed.next_poll_at) or 'now'}",
            feed.schedule_reason,
        )
    return 0


def feeds_edit(args: argparse.Namespace) -> int:
    """Change the interval (or `--default-interval`), full-text fetching, or the name; polled next."""
    change = parse(
        FeedChange,
        {
            "interval": args.interval,
            "default_interval": args.default_interval,
            "fulltext": args.fulltext,
            "name": args.name,
        },
    )
    feed = feeds(runtime()).edit(args.feed_id, change)
    if args.json:
        emit(feed)
        return 0
    interval = f"every {feed.interval} s" if feed.interval else "the adaptive schedule"
    say(
        f"feed {feed.id} ({feed.url}): polled on {interval}, full text {'on' if feed.fulltext else 'off'}, "
        f"name {feed.title!r}; next poll now"
    )
    return 0


def feeds_refresh(args: argparse.Namespace) -> int:
    """Poll one feed now, as the poller would; new entries go to the workers."""
    done = feeds(runtime()).refresh(args.feed_id)
    if args.json:
        emit({"feed": to_builtins(done.feed), **done.counts})
        return 0
    feed, counts = done.feed, done.counts
    if counts.get("errors"):
        raise ConfigError(f"feed {feed.id} ({feed.url}): {feed.muted_reason or feed.last_error}")
    if counts.get("not_modified"):
        say(f"feed {feed.id} ({feed.url}): not modified since the last poll")
    else:
        say(
            f"feed {feed.id} ({feed.url}): {counts.get('entries', 0)} entries, "
            f"{counts.get('new', 0)} new and {counts.get('updated', 0)} changed queued for processing"
        )
    return 0


def feeds_remove(args: argparse.Namespace) -> int:
    feed = feeds(runtime()).remove(args.feed_id)
    say(f"removed feed {feed.id} ({feed.url}); its stored articles stay")
    return 0


def feeds_enable(args: argparse.Namespace) -> int:
    """Resume polling a muted feed (410 Gone) now, with its error count reset."""
    feed = feeds(runtime()).enable(args.feed_id)
    row(feed.id, feed.url, feed.status)
    return 0


def feeds_import(args: argparse.Namespace) -> int:
    """Add every feed of an OPML file; unsafe or malformed URLs are skipped with a reason."""
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror}") from None
    from ingest.feeds.discover import read_opml

    done = feeds(runtime()).import_feeds([(o.url, o.title) for o in read_opml(data)])
    for url, why in done.skipped:
        print(f"ingest: skipped {url}: {why}", file=sys.stderr)
    for feed in done.added:
        row(feed.id, feed.url)
    print(
        f"ingest: imported {len(done.added)} feeds ({done.present} already present, "
        f"{len(done.skipped)} skipped)",
        file=sys.stderr,
    )
    return 0


def feeds_export(args: argparse.Namespace) -> int:
    from ingest.feeds.discover import write_opml

    sys.stdout.buffer.write(write_opml(runtime().store.list_feeds()))
    sys.stdout.flush()
    return 0


def _id(p: argparse.ArgumentParser) -> None:
    p.add_argument("feed_id", type=int, metavar="ID")


def add_parsers(sub: Any) -> None:
    """The `feeds` command and its actions (called from `app.cli.build_parser`)."""
    feeds_ = sub.add_parser("feeds", help="manage feeds").add_subparsers(dest="action", required=True)
    p = feeds_.add_parser("add", help="add a feed by URL (a web page URL: the feed it links to)")
    p.add_argument("url")
    p.add_argument("--interval", type=int, metavar="SECONDS", help="fixed seconds between polls (60 or more)")
    p.add_argument(
        "--fulltext",
        action="store_true",
        help="fetch each article's page when the feed carries only a summary",
    )
    p.add_argument("--name", help="the feed's name (default: its own title)")
    p.set_defaults(func=feeds_add)
    p = feeds_.add_parser("list", help="list feeds and their fetch state")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=feeds_list)
    p = feeds_.add_parser("edit", help="change a feed's interval, full-text fetching or name")
    _id(p)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--interval", type=int, metavar="SECONDS", help="fixed seconds between polls")
    which.add_argument("--default-interval", action="store_true", help="back to the adaptive schedule")
    p.add_argument(
        "--fulltext",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fetch each article's page when the feed carries only a summary",
    )
    p.add_argument("--name")
    p.add_argument("--json", action="store_true", help="print the feed as JSON")
    p.set_defaults(func=feeds_edit)
    p = feeds_.add_parser("refresh", help="poll one feed now")
    _id(p)
    p.add_argument("--json", action="store_true", help="print the feed and the poll's counts as JSON")
    p.set_defaults(func=feeds_refresh)
    for name, func, text in (
        ("remove", feeds_remove, "remove a feed (its articles stay)"),
        ("enable", feeds_enable, "resume polling a muted feed"),
    ):
        p = feeds_.add_parser(name, help=text)
        _id(p)
        p.set_defaults(func=func)
    p = feeds_.add_parser("import", help="add the feeds of an OPML file")
    p.add_argument("file", metavar="FILE.opml", help="OPML file, or - for stdin")
    p.set_defaults(func=feeds_import)
    p = feeds_.add_parser("export", help="print every feed as OPML")
    p.set_defaults(func=feeds_export)
