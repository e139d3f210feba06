"""Wires the stages for a batch of entries: clean -> dedup -> language -> store -> match -> outbox.

Stages are pure or own their I/O; this module only decides the order and
what flows on. Only articles the store reports as new reach matching, and
only alerts the outbox reports as new are handed back for delivery, so a
batch that runs twice produces nothing the second time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from ingest.alert.webhook import alert_id
from ingest.clean import Rules, clean_document
from ingest.clean.extract import PageFetcher, extract_page
from ingest.clean.html import to_paragraphs
from ingest.dedup.fingerprint import DedupItem, fingerprint
from ingest.dedup.fingerprint import content_hash as body_hash
from ingest.dedup.index import Deduplicator
from ingest.errors import FetchError, NotFound
from ingest.language.detect import UNSURE, LanguageDetector
from ingest.log import get_logger
from ingest.match import MatchDocument, Matcher
from ingest.models import Alert, Article, CleanDocument, LanguageResult, RawEntry, SubscriptionOptions, utcnow
from ingest.store.base import Store

log = get_logger(__name__)

LANGUAGE_SAMPLE_CHARS = 2000


def article_id(feed_id: int, entry_key: str) -> str:
    """Deterministic, so re-processing an entry finds the same article."""
    return "art_" + hashlib.sha256(f"{feed_id}\x00{entry_key}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ProcessedDocument:
    """An entry after clean and language, before dedup and store (the CLI's `process`)."""

    clean: CleanDocument
    language: LanguageResult
    author: str | None = None  # from the article page when the feed had none (full text)
    published_at: datetime | None = None


@dataclass
class BatchResult:
    """What one batch did, for logs and the caller's next step."""

    stored: list[Article] = field(default_factory=list)
    updated: int = 0
    unchanged: int = 0
    exact_duplicates: int = 0  # same canonical URL or body as an earlier article
    near_duplicates: int = 0  # syndicated copies that joined an earlier story
    alerts: list[Alert] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class SubscriptionIndex:
    """The matcher over active and paused subscriptions, refreshed when the store says they changed.

    Paused ones still match: their alerts wait in the outbox and go out on resume.
    """

    def __init__(self, store: Store, *, check_every: float = 2.0) -> None:
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


class Preparer:
    """Full text (optional), clean and language-tag entries: no Redis and no database needed."""

    def __init__(
        self,
        detector: LanguageDetector,
        rules: Rules | None = None,
        *,
        fetcher: PageFetcher | None = None,
        fulltext_min_words: int = 120,
    ) -> None:
        self.detector = detector
        self.rules = rules
        self.fetcher = fetcher  # None: entries are never completed from their page
        self.fulltext_min_words = fulltext_min_words

    def full_text(self, entry: RawEntry) -> RawEntry:
        """A short entry of a full-text feed, completed from its page (author and date too)."""
        if not entry.fulltext or not entry.url or self.fetcher is None:
            return entry
        words = sum(len(p.split()) for p in to_paragraphs(entry.content, is_html=entry.is_html))
        if words >= self.fulltext_min_words:
            return entry
        try:
            result = self.fetcher(entry.url)
        except FetchError as exc:
            log.warning("fulltext_fetch_failed", url=entry.url, error=exc.reason)
            return entry
        page = extract_page(result.content or b"", result.url)
        if page.word_count() <= words:
            log.info("fulltext_not_longer", url=entry.url, feed_words=words, page_words=page.word_count())
            return entry
        log.info("fulltext_extracted", url=entry.url, feed_words=words, page_words=page.word_count())
        return replace(
            entry,
            content=page.text,
            is_html=False,
            summary=entry.summary or (entry.content if words else None),
            author=entry.author or page.author,
            published_at=entry.published_at or page.published_at,
        )

    def prepare(self, entry: RawEntry) -> ProcessedDocument:
        return self.tag(self.clean(entry), entry.language_hint)

    def clean(self, entry: RawEntry) -> ProcessedDocument:
        """Full text and cleaning only (language `und`): enough to tell whether a known entry changed."""
        entry = self.full_text(entry)
        clean = clean_document(
            entry.title,
            entry.content,
            is_html=entry.is_html,
            url=entry.url,
            feed_title=entry.feed_title,
            summary=entry.summary,
            rules=self.rules,
            learnt_suffix=entry.title_suffix,
        )
        return ProcessedDocument(clean, UNSURE, entry.author, entry.published_at)

    def tag(self, doc: ProcessedDocument, hint: str | None = None) -> ProcessedDocument:
        sample = f"{doc.clean.title}\n{doc.clean.text[:LANGUAGE_SAMPLE_CHARS]}"
        return replace(doc, language=self.detector.detect(sample, hint=hint))


class Pipeline:
    """Everything a worker does to a batch of entries; models are loaded once per instance."""

    def __init__(self, store: Store, dedup: Deduplicator, preparer: Preparer) -> None:
        self.store = store
        self.dedup = dedup
        self.preparer = preparer
        self.subscriptions = SubscriptionIndex(store)

    def process(self, entries: Sequence[RawEntry]) -> BatchResult:
        result = BatchResult()
        entries = self._with_feed_switches(entries)
        fresh = self._split_known(entries, result)
        if not fresh:
            return result
        timer = _Timer(result.seconds)
        with timer("clean_language"):
            prepared = [(entry, self.preparer.prepare(entry)) for entry in fresh]
        with timer("dedup"):
            articles = self._assign_stories(prepared, result)
        with timer("store"):
            result.stored = self.store.add_articles(articles)
        with timer("match"):
            candidates = self._match(result.stored)
        with timer("outbox"):
            result.alerts = self.store.add_alerts(candidates) if candidates else []
        return result

    def _with_feed_switches(self, entries: Sequence[RawEntry]) -> list[RawEntry]:
        """Entries of feeds added with `--fulltext` carry the switch (the poller does not set it)."""
        switches: dict[int, bool] = {}
        for feed_id in {e.feed_id for e in entries if not e.fulltext}:
            try:
                switches[feed_id] = self.store.get_feed(feed_id).fulltext
            except NotFound:
                switches[feed_id] = False
        return [replace(e, fulltext=True) if switches.get(e.feed_id) else e for e in entries]

    def _split_known(self, entries: Sequence[RawEntry], result: BatchResult) -> list[RawEntry]:
        """Entries never stored go on; changed ones become updates (no new story, no alert)."""
        fresh = []
        known = self.store.get_articles_by_entries((e.feed_id, e.entry_key) for e in entries)
        for entry in entries:
            existing = known.get((entry.feed_id, entry.entry_key))
            if existing is None:
                fresh.append(entry)
                continue
            doc = self.preparer.clean(entry)  # no language yet: most known entries come back unchanged
            new_hash = body_hash(doc.clean.text)  # fingerprint()'s content hash, without the MinHash
            if new_hash == existing.content_hash:
                result.unchanged += 1
                continue
            doc = self.preparer.tag(doc, entry.language_hint)
            self.store.update_article(
                self._article(entry, doc, existing.story_id, existing.id, new_hash, updated=True)
            )
            result.updated += 1
            log.info("article_updated", article_id=existing.id, url=existing.url)
        return fresh

    def _assign_stories(
        self, prepared: list[tuple[RawEntry, ProcessedDocument]], result: BatchResult
    ) -> list[Article]:
        items = []
        for entry, doc in prepared:
            fp = fingerprint(doc.clean.text, doc.clean.url)
            items.append(DedupItem(article_id(entry.feed_id, entry.entry_key), fp, entry.published_at))
        stories = self.dedup.assign(items)
        articles = []
        for (entry, doc), item, story in zip(prepared, items, stories, strict=True):
            if story.kind == "exact":
                result.exact_duplicates += 1
            elif story.kind == "near":
                result.near_duplicates += 1
            articles.append(
                self._article(entry, doc, story.story_id, item.article_id, item.fingerprint.content_hash)
            )
        return articles

    def _article(
        self,
        entry: RawEntry,
        doc: ProcessedDocument,
        story_id: str,
        art_id: str,
        content_hash: str | None = None,
        *,
        updated: bool = False,
    ) -> Article:
        clean = doc.clean
        return Article(
            id=art_id,
            feed_id=entry.feed_id,
            feed_url=entry.feed_url,
            entry_key=entry.entry_key,
            url=clean.url,
            title=clean.title,
            text=clean.text,
            summary=clean.summary,
            language=doc.language.code,
            language_confidence=doc.language.confidence,
            published_at=entry.published_at or doc.published_at,
            story_id=story_id,
            content_hash=content_hash or body_hash(clean.text),
            fetched_at=utcnow(),
            author=entry.author or doc.author,
            updated=updated,
            original_text_bytes=clean.original_bytes,
        )

    def _match(self, articles: Sequence[Article]) -> list[Alert]:
        matcher = self.subscriptions.current()
        alerts = []
        for article in articles:
            doc = MatchDocument(
                title=article.title,
                text=article.text,
                language=article.language,
                feed_url=article.feed_url,
                url=article.url,
            )
            for match in matcher.match(doc):
                options = self.subscriptions.filters.get(match.subscription_id)
                if options is not None and not options.accepts(article.language, article.feed_id):
                    continue
                alerts.append(
                    Alert(
                        id=alert_id(match.subscription_id, article.story_id),
                        subscription_id=match.subscription_id,
                        story_id=article.story_id,
                        article_id=article.id,
                        matched_terms=match.matched_terms,
                        created_at=utcnow(),
                    )
                )
        return alerts


class _Timer:
    """Adds wall time per stage into a dict (the benchmarks read it)."""

    def __init__(self, into: dict[str, float]) -> None:
        self._into = into

    def __call__(self, name: str) -> _Timer:
        self._name = name
        return self

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self._into[self._name] = self._into.get(self._name, 0.0) + time.perf_counter() - self._start
