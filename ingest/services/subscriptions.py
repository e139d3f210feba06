"""Subscription options from user input, and backfill: a new query against stored articles.

Shared by `ingest subs add` and the HTTP API, so both accept and refuse the
same values with the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from ingest.errors import ConfigError, NotFound
from ingest.log import get_logger
from ingest.match import MatchDocument, match_query, parse_query
from ingest.models import Alert, Article, ArticleFilter, Subscription, SubscriptionOptions, alert_id, utcnow
from ingest.store.articles import ArticleStore
from ingest.store.feeds import FeedStore
from ingest.store.outbox import OutboxStore

log = get_logger(__name__)


class BackfillStore(ArticleStore, OutboxStore, Protocol):
    """The store ports backfill uses: stored articles and the outbox."""


_PERIOD = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/\s*(min|m|minute))?\s*$", re.IGNORECASE)
_LANG = re.compile(r"^[a-z]{2,3}$")
MAX_BACKFILL = timedelta(days=365)
PAGE = 500


def parse_period(value: str) -> timedelta:
    """`7d`, `12h`, `30m`, `2w`, `90s` as a timedelta (at most a year)."""
    found = _PERIOD.match(value)
    if not found or int(found.group(1)) == 0:
        raise ConfigError(f"backfill period {value!r}: give a number and a unit, e.g. 7d, 12h, 30m")
    period = timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2).lower()])
    if period > MAX_BACKFILL:
        raise ConfigError(f"backfill period {value!r}: at most 365 days")
    return period


def parse_rate_limit(value: str | int) -> int:
    """`10/min` (or `10`): most webhooks per minute, 1 or more."""
    found = _RATE.match(str(value))
    if not found or int(found.group(1)) < 1:
        raise ConfigError(f"rate limit {value!r}: give webhooks per minute, e.g. 10/min")
    return int(found.group(1))


def parse_languages(values: Iterable[str]) -> tuple[str, ...]:
    """ISO 639 codes, repeated or comma-separated (`en,de`), lower-cased, each once."""
    codes: list[str] = []
    for value in values:
        for part in str(value).split(","):
            code = part.strip().lower()
            if not code:
                continue
            if not _LANG.match(code):
                raise ConfigError(f"language {part.strip()!r}: give an ISO 639-1 code such as en or de")
            if code not in codes:
                codes.append(code)
    return tuple(codes)


def resolve_feeds(store: FeedStore, values: Iterable[str | int]) -> tuple[int, ...]:
    """Feed ids or URLs of feeds the service polls, as feed ids (an unknown feed is refused)."""
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        try:
            feed = store.get_feed(int(text)) if text.isdigit() else store.find_feed_by_url(text)
        except NotFound:
            feed = None
        if feed is None:
            raise ConfigError(f"feed {text!r}: no such feed (give an id or URL from `ingest feeds list`)")
        if feed.id not in ids:
            ids.append(feed.id)
    return tuple(ids)


def parse_digest(value: int | None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 7 * 24 * 60:
        raise ConfigError(f"digest {value!r}: give minutes between digests, 1 to 10080")
    return value


def make_options(
    store: FeedStore,
    *,
    languages: Sequence[str] = (),
    feeds: Sequence[str | int] = (),
    digest_minutes: int | None = None,
    rate_limit: str | int | None = None,
) -> SubscriptionOptions:
    """Validated options; ConfigError names the bad value."""
    return SubscriptionOptions(
        languages=parse_languages(languages),
        feed_ids=resolve_feeds(store, feeds),
        digest_minutes=parse_digest(digest_minutes),
        rate_limit=parse_rate_limit(rate_limit) if rate_limit is not None else None,
    )


def backfill(
    store: BackfillStore, sub: Subscription, period: timedelta, *, now: datetime | None = None
) -> list[Alert]:
    """Match the subscription against articles fetched within `period`; record one alert per story.

    Alerts go into the outbox like live matches (unique per subscription and
    story, so running it twice adds nothing); returns the new ones, to queue.
    The story's earliest matching article is the one alerted.
    """
    query = parse_query(sub.query)
    since = (now or utcnow()) - period
    chosen: dict[str, tuple[Article, list[str]]] = {}
    after: tuple[datetime, str] | None = None
    while True:
        articles = store.list_articles_page(ArticleFilter(since=since), limit=PAGE, after=after)
        for article in articles:
            if not sub.options.accepts(article.language, article.feed_id):
                continue
            found = match_query(
                query,
                MatchDocument(
                    title=article.title,
                    text=article.text,
                    language=article.language,
                    feed_url=article.feed_url,
                    url=article.url,
                ),
                sub.id,
            )
            if found is not None:
                chosen[article.story_id] = (article, found.matched_terms)  # newest first: earliest wins
        if len(articles) < PAGE:
            break
        after = (articles[-1].fetched_at, articles[-1].id)
    now = utcnow()
    alerts = [
        Alert(
            id=alert_id(sub.id, story_id),
            subscription_id=sub.id,
            story_id=story_id,
            article_id=article.id,
            matched_terms=terms,
            created_at=now,
        )
        for story_id, (article, terms) in chosen.items()
    ]
    new = store.add_alerts(alerts)
    log.info("backfill_done", subscription_id=sub.id, matched_stories=len(alerts), new_alerts=len(new))
    return new
