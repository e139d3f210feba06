"""Matching stored articles against the subscriptions: the matcher, kept in step with the store.

Used by the batch pipeline and by the re-match of a retried batch; backfill matches one new
subscription against stored articles instead (`ingest.services.subscriptions`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ingest.log import get_logger
from ingest.match import MatchDocument, Matcher
from ingest.models import Alert, Article, SubscriptionOptions, alert_id, utcnow
from ingest.store.subscriptions import SubscriptionStore

log = get_logger(__name__)


class SubscriptionIndex:
    """The matcher over active and paused subscriptions, refreshed when the store says they changed.

    Paused ones still match: their alerts wait in the outbox and go out on resume.
    """

    def __init__(self, store: SubscriptionStore, *, check_every: float = 2.0) -> None:
        self._store = store
        self._check_every = check_every
        self._checked_at = 0.0
        self._version: str | None = None
        self._queries: dict[str, str] = {}
        self.matcher = Matcher()
        self.filters: dict[str, SubscriptionOptions] = {}  # subscriptions with language/feed filters

    def current(self) -> Matcher:
        """The matcher, at most `check_every` seconds behind the database."""
        now = time.monotonic()
        if now - self._checked_at >= self._check_every:
            self._checked_at = now
            version = self._store.subscriptions_version()
            if version != self._version:
                self._reload()
                self._version = version
        return self.matcher

    def _reload(self) -> None:
        active = [s for s in self._store.list_subscriptions() if s.status in ("active", "paused")]
        wanted = {s.id: s.query for s in active}
        self.filters = {s.id: s.options for s in active if s.options.filters}
        for sub_id, query in self._queries.items():
            if wanted.get(sub_id) != query:
                self.matcher.remove(sub_id)
        for sub_id, query in wanted.items():
            if self._queries.get(sub_id) != query:
                self.matcher.add(sub_id, query)
        self._queries = wanted
        log.info("subscriptions_loaded", count=len(wanted))

    def alerts_for(self, articles: Sequence[Article]) -> list[Alert]:
        """One alert candidate per (matching subscription, article's story); the outbox dedupes."""
        matcher = self.current()
        alerts = []
        for article in articles:
            doc = MatchDocument(title=article.title, text=article.text, language=article.language,
                                feed_url=article.feed_url, url=article.url)  # fmt: skip
            for match in matcher.match(doc):
                options = self.filters.get(match.subscription_id)
                if options is not None and not options.accepts(article.language, article.feed_id):
                    continue
                alerts.append(Alert(
                    id=alert_id(match.subscription_id, article.story_id),
                    subscription_id=match.subscription_id, story_id=article.story_id,
                    article_id=article.id, matched_terms=match.matched_terms, created_at=utcnow(),
                ))  # fmt: skip
        return alerts
