"""A feed's own language as a prior for short texts: headlines of an English feed come out English
unless the text is strong evidence of another language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from ingest.dedup.index import Deduplicator
from ingest.language.detect import LanguageDetector
from ingest.language.prior import PRIOR_CONFIDENT, FeedLanguagePrior, with_prior
from ingest.models import RawEntry
from ingest.services.prepare import Preparer
from ingest.services.process import Pipeline
from ingest.store.base import Store

FEED = json.loads((Path(__file__).parent / "fixtures" / "language" / "english_feed.json").read_text())
ENGLISH = FeedLanguagePrior.of("en", {"en": 20})


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector(loads_per_minute=None)


def test_belief_grows_with_the_feeds_long_entries() -> None:
    assert FeedLanguagePrior().belief() == (None, 0.0)
    declared_only = FeedLanguagePrior.of("en", {})
    assert declared_only.belief()[1] < PRIOR_CONFIDENT  # a declaration alone is only a hint
    assert FeedLanguagePrior.of(None, ["en", "en", "en"]).belief() == ("en", 0.75)
    # the entries outvote a wrong declaration
    assert FeedLanguagePrior.of("en", {"de": 30, "und": 9}).belief()[0] == "de"
    assert ENGLISH.belief() == ("en", 0.95)


@pytest.mark.parametrize("title", FEED["short_english"])
def test_short_english_headlines_of_an_english_feed_are_english(
    detector: LanguageDetector, title: str
) -> None:
    alone = detector.detect(title)
    assert with_prior(detector, title, alone, ENGLISH).code == "en"
    if title == "Enhancing quantum sensing":
        assert alone.code == "la"  # the detector alone is fooled: the prior is what fixes it


@pytest.mark.parametrize("title", FEED["short_german"])
def test_a_german_headline_with_strong_evidence_stays_german(detector: LanguageDetector, title: str) -> None:
    found = detector.detect(title, hint="en")
    assert with_prior(detector, title, found, ENGLISH) == found
    assert found.code == "de"


def test_no_prior_without_confidence_and_long_text_untouched(detector: LanguageDetector) -> None:
    title = FEED["short_english"][0]
    alone = detector.detect(title)
    assert with_prior(detector, title, alone, FeedLanguagePrior.of("en", {})) == alone
    text = FEED["long_entries"][0]["text"]
    german = FeedLanguagePrior.of("de", {"de": 20})
    assert with_prior(detector, text, detector.detect(text), german).code == "en"


def _entries(feed_id: int, url: str, items: list[dict[str, Any]], tag: str) -> list[RawEntry]:
    return [
        RawEntry(feed_id, url, f"{tag}{i}", f"https://n.ex/{tag}{i}", item["title"], item.get("text") or "")
        for i, item in enumerate(items)
    ]


def test_pipeline_uses_the_feeds_stored_and_batch_evidence(store: Store, redis_client: redis.Redis) -> None:
    """The stored long articles of the feed (a later batch) and the batch's own long entries
    (a feed's first batch) both make the prior; a feed without them gets the detector's answer."""
    pipeline = Pipeline(store, Deduplicator(redis_client, prefix="t:prior:"), Preparer(LanguageDetector()))
    feed = store.add_feed("https://news.example/rss")
    first = _entries(feed.id, feed.url, [*FEED["long_entries"], {"title": FEED["short_english"][0]}], "a")
    languages = {a.title: a.language for a in pipeline.process(first).stored}
    assert set(languages.values()) == {"en"}
    shorts = [{"title": t} for t in FEED["short_english"][1:] + FEED["short_german"]]
    later = {a.title: a.language for a in pipeline.process(_entries(feed.id, feed.url, shorts, "b")).stored}
    assert later == {FEED["short_english"][1]: "en", **{t: "de" for t in FEED["short_german"]}}
    other = store.add_feed("https://other.example/rss")
    alone = pipeline.process(_entries(other.id, other.url, [{"title": FEED["short_english"][0]}], "c")).stored
    assert alone[0].language != "en"
