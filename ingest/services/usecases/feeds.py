"""Managing feeds: add (with discovery), import an OPML file's feeds, edit, remove, enable, refresh one now.

A feed is added once: adding a URL that is already polled is refused, naming the feed and
`feeds edit`, rather than silently keeping the old settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.errors import FetchError, ParseError, UnsafeURLError
from ingest.log import get_logger
from ingest.models import Feed, FetchResult
from ingest.services.refresh import Refreshed, Refresher
from ingest.services.usecases.paging import decode_cursor, encode_cursor
from ingest.services.usecases.requests import Conflict, FeedChange, Invalid, NewFeed, PageQuery
from ingest.services.usecases.views import FeedPage
from ingest.settings import Settings
from ingest.store.feeds import FeedStore

log = get_logger(__name__)


@dataclass(frozen=True)
class AddedFeed:
    """The feed added, the page it was found on (discovery), and a warning when it was not checked."""

    feed: Feed
    found_on: str | None = None
    warning: str | None = None


@dataclass(frozen=True)
class Imported:
    added: list[Feed]
    present: int
    skipped: list[tuple[str, str]]  # (url, why)


@dataclass(frozen=True)
class Refreshing:
    """What polling one feed now did: the feed's state after it, and the poll's counts."""

    feed: Feed
    counts: dict[str, int] = field(default_factory=dict)


def checked_url(url: str, settings: Settings, name: str = "url") -> str:
    """A feed URL the poller may fetch: http(s), resolving only to public (or allowed) addresses."""
    from ingest.net.guard import check_url

    try:
        check_url(url, settings.allowed_networks)
    except FetchError as exc:
        raise Invalid(name, exc.reason) from None
    except ValueError as exc:
        raise Invalid(name, f"not a valid URL: {exc}") from None
    return url


@dataclass(frozen=True)
class Found:
    """The feed behind a URL: its URL and title, and the page that announced it (if it was a page)."""

    url: str
    title: str | None
    from_page: str | None = None


Discover = Callable[[str], Found]  # raises FetchError (UnsafeURLError when refused) or ParseError
Poll = Callable[[Feed], FetchResult | FetchError]  # one conditional GET of a feed, as the poller does


@dataclass
class Feeds:
    """The feed use cases over one store; the network comes in as ports (the composition root's
    `discover` and `poll`), and `refresher` is built only when a feed is polled now."""

    store: FeedStore
    settings: Settings
    refresher: Callable[[], Refresher] | None = None
    discover: Discover | None = None
    poll: Poll | None = None

    def _refuse_known(self, url: str) -> None:
        known = self.store.find_feed_by_url(url)
        if known is not None:
            raise Conflict(
                f"feed {known.id} already has URL {url}; `ingest feeds edit {known.id}` changes it"
            )

    def add(self, req: NewFeed, *, discover: bool = False) -> AddedFeed:
        """Add a feed; with `discover`, a web page URL is replaced by the feed it announces."""
        url, title = checked_url(req.url, self.settings), req.name
        found_on = warning = None
        self._refuse_known(url)
        if discover:
            try:
                found = self._discover(url)
                url, title, found_on = found.url, req.name or found.title, found.from_page
            except UnsafeURLError as exc:
                raise Invalid("url", exc.reason) from None
            except FetchError as exc:  # the server is down now: add it anyway, the poller will retry
                warning = f"added without checking it is a feed: {exc.reason}"
            if found_on:
                self._refuse_known(url)
        feed = self.store.add_feed(url, interval=req.interval, title=title, fulltext=req.fulltext)
        log.info("feed_added", feed_id=feed.id, feed_url=feed.url)
        return AddedFeed(feed, found_on, warning)

    def _discover(self, url: str) -> Found:
        assert self.discover is not None, "Feeds.add(discover=True) needs a discover port"
        try:
            return self.discover(url)
        except ParseError as exc:
            raise Invalid("url", str(exc)) from None

    def import_feeds(self, outlines: list[tuple[str, str | None]]) -> Imported:
        """Add every (url, title) of an OPML file; unsafe or malformed URLs are skipped with the reason."""
        known = {f.url for f in self.store.list_feeds()}
        added: list[Feed] = []
        skipped: list[tuple[str, str]] = []
        present = 0
        for url, title in outlines:
            if url in known:
                present += 1
                continue
            try:
                checked_url(url, self.settings)
            except Invalid as exc:
                skipped.append((url, exc.reason))
                continue
            added.append(self.store.add_feed(url, title=title))
            known.add(url)
        return Imported(added, present, skipped)

    def edit(self, feed_id: int, change: FeedChange) -> Feed:
        """Change interval (or back to the default), full-text fetching, name; the next poll is now."""
        if change.interval is not None and change.default_interval:
            raise Invalid("interval", "give an interval or ask for the default, not both")
        feed = self.store.get_feed(feed_id)
        interval = None if change.default_interval else (change.interval or feed.interval)
        fulltext = feed.fulltext if change.fulltext is None else change.fulltext
        edited = self.store.edit_feed(
            feed_id, interval=interval, fulltext=fulltext, title=change.name or feed.title
        )
        log.info("feed_edited", feed_id=feed_id, feed_url=feed.url, interval=interval, fulltext=fulltext)
        return edited

    def remove(self, feed_id: int) -> Feed:
        """Remove a feed (its stored articles stay); returns what was removed."""
        feed = self.store.get_feed(feed_id)
        self.store.remove_feed(feed_id)
        log.info("feed_removed", feed_id=feed_id, feed_url=feed.url)
        return feed

    def enable(self, feed_id: int) -> Feed:
        """Resume polling a muted feed now, with its error count reset."""
        return self.store.set_feed_status(feed_id, "active")

    def refresh(self, feed_id: int) -> Refreshing:
        """Poll one feed now, as the poller would (conditional GET, new entries queued)."""
        assert self.refresher is not None and self.poll is not None, "Feeds.refresh needs its ports"
        feed = self.store.get_feed(feed_id)
        done: Refreshed = self.refresher().refresh(feed, self.poll(feed))
        return Refreshing(self.store.get_feed(feed_id), done.counts)

    def page(self, q: PageQuery) -> FeedPage:
        key = decode_cursor(q.cursor, "feeds", (int,))
        feeds = self.store.list_feeds_page(limit=q.limit + 1, after_id=key[0] if key else None)
        more, feeds = len(feeds) > q.limit, feeds[: q.limit]
        return FeedPage(
            items=feeds, next_cursor=encode_cursor("feeds", feeds[-1].id) if more and feeds else None
        )
