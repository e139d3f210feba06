"""What every command shares: the process's runtime, the use cases over it, output to stdout."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from app.runtime import Runtime
from ingest.errors import FetchError
from ingest.models import Feed, FetchResult, iso
from ingest.services.usecases.alerts import Alerts
from ingest.services.usecases.feeds import Feeds, Found
from ingest.services.usecases.reading import Reading
from ingest.services.usecases.subscriptions import Subscriptions
from ingest.services.usecases.views import to_builtins
from ingest.settings import Settings


def runtime() -> Runtime:
    """The runtime of this command, from the environment (logging configured)."""
    return Runtime.from_env()


def discover(settings: Settings) -> Callable[[str], Found]:
    """The feed behind a URL (itself, or the one its page announces), over a guarded client."""

    def find(url: str) -> Found:
        from ingest.feeds.discover import discover
        from ingest.fetch import make_client

        with make_client(settings) as client:
            found = discover(client, url, settings)
        return Found(found.url, found.title, found.from_page)

    return find


def poll(settings: Settings) -> Callable[[Feed], FetchResult | FetchError]:
    """One conditional GET of a feed, as the poller makes it; a failure is returned, not raised."""

    def get(feed: Feed) -> FetchResult | FetchError:
        from ingest.fetch import fetch_feed, make_client

        with make_client(settings) as client:
            try:
                return fetch_feed(
                    client,
                    feed.url,
                    etag=feed.etag,
                    last_modified=feed.last_modified,
                    max_bytes=settings.max_body_bytes,
                    timeout=settings.fetch_timeout,
                )
            except FetchError as exc:
                return exc

    return get


def feeds(rt: Runtime) -> Feeds:
    return Feeds(rt.store, rt.settings, lambda: rt.refresher, discover(rt.settings), poll(rt.settings))


def subscriptions(rt: Runtime) -> Subscriptions:
    return Subscriptions(rt.store, rt.settings, rt.wakeup.wake)


def alerts(rt: Runtime) -> Alerts:
    return Alerts(rt.store, rt.settings, rt.wakeup.wake)


def reading(rt: Runtime) -> Reading:
    return Reading(rt.store)


def emit(obj: Any) -> None:
    """One JSON object (a dict or a view) on a line of its own (stdout)."""
    print(json.dumps(to_builtins(obj), ensure_ascii=False))


def row(*fields: Any) -> None:
    """One tab-separated line; None as empty, datetimes as ISO 8601."""
    print("\t".join("" if f is None else (iso(f) or "") if hasattr(f, "tzinfo") else str(f) for f in fields))


def say(sentence: str) -> None:
    """What a command did, in words, on stdout (scripts use `--json` instead)."""
    print(sentence)
