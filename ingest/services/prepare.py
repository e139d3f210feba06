"""Preparing one entry: full text (optional), clean, language. No Redis and no database.

The worker's pipeline and the CLI's `ingest process` share it, so a document comes out the
same from both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from ingest.clean import Rules, clean_document
from ingest.clean.extract import extract_page
from ingest.clean.html import to_paragraphs
from ingest.errors import FetchError
from ingest.language.detect import UNSURE, LanguageDetector
from ingest.language.prior import FeedLanguagePrior, with_prior
from ingest.log import get_logger
from ingest.models import CleanDocument, LanguageResult, RawEntry
from ingest.services.ports import PageFetcher

log = get_logger(__name__)

LANGUAGE_SAMPLE_CHARS = 2000


@dataclass(frozen=True)
class ProcessedDocument:
    """An entry after clean and language, before dedup and store (the CLI's `process`)."""

    clean: CleanDocument
    language: LanguageResult
    author: str | None = None  # from the article page when the feed had none (full text)
    published_at: datetime | None = None


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
        return replace(doc, language=self.detector.detect(_sample(doc), hint=hint))

    def settle(self, doc: ProcessedDocument, prior: FeedLanguagePrior) -> ProcessedDocument:
        """The language of a short text revised by its feed's prior (`ingest.language.prior`)."""
        settled = with_prior(self.detector, _sample(doc), doc.language, prior)
        return doc if settled == doc.language else replace(doc, language=settled)


def _sample(doc: ProcessedDocument) -> str:
    return f"{doc.clean.title}\n{doc.clean.text[:LANGUAGE_SAMPLE_CHARS]}"
