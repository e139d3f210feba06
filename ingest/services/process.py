"""Processing a batch of entries: clean -> language -> dedup -> store -> match -> outbox.

Stages are pure or own their I/O; this module only decides the order and what flows on.
Only articles the store reports as new reach matching, and only alerts the outbox reports
as new wake the sender, so a batch that runs twice produces nothing the second time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ingest.dedup.features import sentence_keys, site
from ingest.dedup.fingerprint import DedupItem, fingerprint
from ingest.dedup.fingerprint import content_hash as body_hash
from ingest.errors import NotFound
from ingest.language.detect import normalize_hint
from ingest.language.prior import LONG_TEXT_CHARS, RECENT_ENTRIES, FeedLanguagePrior
from ingest.log import get_logger
from ingest.models import Alert, Article, PendingBatch, RawEntry, article_id, utcnow
from ingest.services.matching import SubscriptionIndex
from ingest.services.ports import Metrics, StoryIndex, Wakeup
from ingest.services.prepare import Preparer, ProcessedDocument
from ingest.store.base import Store

log = get_logger(__name__)


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


class Pipeline:
    """Everything a worker does to a batch of entries; models are loaded once per instance."""

    def __init__(self, store: Store, dedup: StoryIndex, preparer: Preparer) -> None:
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
            prepared = self._with_feed_priors([(entry, self.preparer.prepare(entry)) for entry in fresh])
        with timer("dedup"):
            articles = self._assign_stories(prepared, result)
        with timer("store"):
            result.stored = self.store.add_articles(articles)
        with timer("match"):
            candidates = self.subscriptions.alerts_for(result.stored)
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

    def _with_feed_priors(
        self, prepared: list[tuple[RawEntry, ProcessedDocument]]
    ) -> list[tuple[RawEntry, ProcessedDocument]]:
        """Short texts settled by their feed's language prior: the languages of its recent long
        articles (stored, and in this batch) and its declared language (`ingest.language.prior`).
        Feeds with no short text in the batch cost no query."""
        short = {entry.feed_id for entry, doc in prepared if not _long(doc)}
        tallies: dict[int, Counter[str]] = {}
        for feed_id in short:
            recent = self.store.recent_languages(feed_id, min_chars=LONG_TEXT_CHARS, limit=RECENT_ENTRIES)
            tallies[feed_id] = Counter(recent)
        for entry, doc in prepared:
            if entry.feed_id in short and _long(doc):
                tallies[entry.feed_id][doc.language.code] += 1
        settled = []
        for entry, doc in prepared:
            if _long(doc):
                settled.append((entry, doc))
                continue
            prior = FeedLanguagePrior.of(normalize_hint(entry.language_hint), tallies[entry.feed_id])
            settled.append((entry, self.preparer.settle(doc, prior)))
            if settled[-1][1].language != doc.language:
                log.info("language_settled_by_feed", url=entry.url, feed_id=entry.feed_id,
                         found=doc.language.code, language=settled[-1][1].language.code)  # fmt: skip
        return settled

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
        sites = [site(doc.clean.url) for _, doc in prepared]
        keys = [sentence_keys(doc.clean.text) for _, doc in prepared]
        wanted: dict[str, Counter[int]] = {}
        for name, doc_keys in zip(sites, keys, strict=True):
            wanted.setdefault(name, Counter()).update(doc_keys)
        boilerplate = self.dedup.boilerplate(wanted)
        items = []
        for (entry, doc), name in zip(prepared, sites, strict=True):
            fp = fingerprint(doc.clean.text, doc.clean.url, boilerplate.get(name, frozenset()))
            if fp.boilerplate:
                log.debug("boilerplate_left_out", url=doc.clean.url, sentences=fp.boilerplate)
            items.append(DedupItem(article_id(entry.feed_id, entry.entry_key), fp, entry.published_at))
        stories = self.dedup.assign(items)
        counted = zip(sites, keys, stories, strict=True)
        self.dedup.count_sentences((name, k) for name, k, story in counted if story.kind != "exact")
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


class BatchRunner:
    """A worker's job: one stored batch through the pipeline, its alerts announced, the row deleted.

    A retried batch (attempts > 1) is matched again: a worker killed between storing articles
    and writing their alerts left articles the pipeline now reports as unchanged, and matching
    them again writes the missing outbox rows (alert ids are per subscription and story, so
    nothing is written or sent twice).
    """

    def __init__(self, store: Store, pipeline: Pipeline, metrics: Metrics, wakeup: Wakeup) -> None:
        self.store = store
        self.pipeline = pipeline
        self.metrics = metrics
        self.wakeup = wakeup

    def run(self, batch_id: int) -> dict[str, Any]:
        """Process stored batch `batch_id`; a batch already finished is skipped."""
        batch = self.store.get_batch(batch_id)
        if batch is None:
            log.info("batch_already_done", batch_id=batch_id)
            return {"entries": 0, "stored": 0, "skipped": 1}
        raws = [RawEntry.from_dict(e) for e in batch.entries]
        result = self.pipeline.process(raws)
        if batch.attempts > 1:
            result.alerts += self.rematch(raws, since=batch.created_at)
        self._count(result)
        if result.alerts:
            self.wakeup.wake()
        self.store.finish_batch(batch.id)
        summary = _summary(batch, raws, result)
        log.info("batch_processed", **summary)
        return summary

    def rematch(self, raws: Sequence[RawEntry], *, since: datetime | None) -> list[Alert]:
        """Alerts of articles an earlier attempt stored (at or after `since`) but may not have matched."""
        articles: list[Article] = []
        for raw in raws:
            article = self.store.get_article_by_entry(raw.feed_id, raw.entry_key)
            if article and not article.updated and (since is None or article.fetched_at >= since):
                articles.append(article)
        candidates = self.pipeline.subscriptions.alerts_for(articles) if articles else []
        alerts = self.store.add_alerts(candidates) if candidates else []
        if alerts:
            log.warning("batch_rematched", alerts=len(alerts), alert_ids=[a.id for a in alerts[:20]])
        return alerts

    def _count(self, result: BatchResult) -> None:
        self.metrics.count("ingest_articles_stored_total", value=len(result.stored))
        self.metrics.count("ingest_duplicates_total", {"kind": "near"}, result.near_duplicates)
        self.metrics.count("ingest_duplicates_total", {"kind": "exact"}, result.exact_duplicates)
        for article in result.stored:
            self.metrics.count("ingest_articles_language_total", {"language": article.language})
            log.info("article_stored", article_id=article.id, url=article.url, story_id=article.story_id,
                     language=article.language, feed_url=article.feed_url)  # fmt: skip
        self.metrics.count("ingest_matches_total", value=len(result.alerts))


def _summary(batch: PendingBatch, raws: Sequence[RawEntry], result: BatchResult) -> dict[str, Any]:
    return {"batch_id": batch.id, "entries": len(raws), "stored": len(result.stored),
            "updated": result.updated, "unchanged": result.unchanged,
            "exact_duplicates": result.exact_duplicates, "near_duplicates": result.near_duplicates,
            "alerts": len(result.alerts)}  # fmt: skip


def _long(doc: ProcessedDocument) -> bool:
    """Long enough to be evidence of its feed's language, and never settled by it."""
    return len(doc.clean.title) + len(doc.clean.text) >= LONG_TEXT_CHARS


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
