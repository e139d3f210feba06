"""Full text: main-text extraction from article pages, and the per-feed full-text step."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from ingest.clean import clean_document
from ingest.clean.extract import drop_headline, extract_page
from ingest.dedup.index import Deduplicator
from ingest.fetch import page_fetcher
from ingest.language.detect import LanguageDetector
from ingest.models import RawEntry
from ingest.services.process import Pipeline, Preparer
from ingest.settings import Settings
from ingest.store.base import Store
from tests.conftest import LoopbackServer, Response

PAGES = Path(__file__).resolve().parent / "fixtures" / "pages"
SEED = Path(__file__).resolve().parent.parent / "app" / "demo" / "feeds" / "seed_sohu_armenia.txt"
HARBOUR = (PAGES / "harbour_article.html").read_text(encoding="utf-8")
HARBOUR_URL = "https://courier.example/news/harbour-cranes-return"
SUMMARY = "<p>Crane operators accepted a revised offer from the port authority.</p>"


def _seed_page() -> str:
    """The seed article as a publisher would serve it: chrome around the scraped body."""
    title, body = SEED.read_text(encoding="utf-8").split("\n", 1)
    paragraphs = "".join(f"<p>{p.strip()}</p>\n" for p in body.split("\n\n") if p.strip())
    return (
        f"<html><head><title>{title}</title><meta property='og:site_name' content='Sohu'></head><body>"
        "<nav><a href='/'>Home</a> <a href='/news'>News</a> <a href='/world'>World</a></nav>"
        f"<article><h1>{title}</h1>{paragraphs}</article>"
        "<footer><p>Copyright 2020 Sohu.com Inc. All rights reserved.</p></footer></body></html>"
    )


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    """One detector for the module: models load once."""
    return LanguageDetector()


def test_page_body_without_chrome() -> None:
    """The article's paragraphs come out; navigation, share row, related and footer do not."""
    page = extract_page(HARBOUR, HARBOUR_URL)
    assert page.paragraphs[0].startswith("The container cranes at the northern harbour")
    assert page.paragraphs[5].startswith("The agreement runs for two years.")
    for chrome in ("Log in", "Most read", "Related stories", "Privacy", "Ferry timetable", "Facebook"):
        assert chrome not in page.text


def test_page_metadata() -> None:
    """Author, publication date, title and site name come from the page's meta data."""
    page = extract_page(HARBOUR, HARBOUR_URL)
    assert page.author == "Maren Tollefsen"
    assert page.published_at is not None and page.published_at.date() == datetime(2024, 3, 14).date()
    assert page.title == "Harbour cranes return to work after three-week strike"
    assert page.site_name == "Coastline Courier"


def test_extracted_page_is_cleaned_by_the_rules() -> None:
    """The newsletter prompt trafilatura keeps is dropped by the residue rules."""
    page = extract_page(HARBOUR, HARBOUR_URL)
    assert "Sign up for our newsletter" in page.text
    doc = clean_document("Harbour cranes return to work", page.text, is_html=False, url=HARBOUR_URL)
    assert "newsletter" not in doc.text
    assert len(doc.text.split("\n\n")) == 6


def test_seed_article_page_extracts_and_cleans() -> None:
    """The seed article served as a full page ends up as its six real paragraphs."""
    page = extract_page(_seed_page(), "https://www.sohu.com/a/428432366_120214180")
    title, _ = SEED.read_text(encoding="utf-8").split("\n", 1)
    doc = clean_document(title, page.text, is_html=False, url="https://www.sohu.com/a/428432366_120214180")
    assert doc.title == "Russia: If the conflict moves to Asia, Russia will provide assistance to Armenia"
    assert doc.text.startswith("China News Agency, Moscow, October 31")
    assert doc.text.endswith("in violation of the agreement.")
    for residue in ("[ad_", "Return to Sohu", "Editor:", "Disclaimer", "Copyright"):
        assert residue not in doc.text
    assert len(doc.text.split("\n\n")) == 6


def test_headline_repeated_in_body_is_dropped() -> None:
    """A leading paragraph equal to the page title (with or without site suffix) goes; others stay."""
    paras = ["Cranes return | Courier", "Body one.", "Body two."]
    assert drop_headline(paras, "Cranes return | Courier") == ["Body one.", "Body two."]
    assert drop_headline(["Cranes return", "Body."], "Cranes return | Courier") == ["Body."]
    assert drop_headline(["Body one.", "Body two."], "Cranes return") == ["Body one.", "Body two."]


def test_page_without_article_gives_no_paragraphs() -> None:
    """An empty or non-HTML page yields nothing rather than an error."""
    assert extract_page("").paragraphs == []
    assert extract_page(b"\x00\x01").paragraphs == []


def _entry(url: str, *, fulltext: bool, content: str = SUMMARY) -> RawEntry:
    return RawEntry(
        feed_id=1,
        feed_url="https://courier.example/rss",
        entry_key=url,
        url=url,
        title="Harbour cranes return to work after three-week strike",
        content=content,
        feed_title="Coastline Courier",
        fulltext=fulltext,
    )


def _served(http_server: LoopbackServer) -> str:
    http_server.routes["/news/cranes"] = Response(200, HARBOUR.encode(), {"Content-Type": "text/html"})
    return http_server.url("/news/cranes")


def test_full_text_is_fetched_for_a_short_entry(
    settings: Settings, http_server: LoopbackServer, detector: LanguageDetector
) -> None:
    """A summary-only entry of a full-text feed becomes the page's cleaned article, author and date."""
    url = _served(http_server)
    preparer = Preparer(
        detector, fetcher=page_fetcher(settings), fulltext_min_words=settings.fulltext_min_words
    )
    doc = preparer.prepare(_entry(url, fulltext=True))
    assert doc.clean.text.startswith("The container cranes at the northern harbour")
    assert "newsletter" not in doc.clean.text and len(doc.clean.text.split("\n\n")) == 6
    assert doc.clean.summary == "Crane operators accepted a revised offer from the port authority."
    assert doc.author == "Maren Tollefsen"
    assert doc.published_at is not None and doc.published_at.astimezone(UTC).day == 14
    assert doc.language.code == "en"
    assert [r.path for r in http_server.requests] == ["/news/cranes"]


def test_feed_without_switch_is_not_fetched(
    settings: Settings, http_server: LoopbackServer, detector: LanguageDetector
) -> None:
    """Without the per-feed switch the summary is the article and no page is requested."""
    url = _served(http_server)
    doc = Preparer(detector, fetcher=page_fetcher(settings)).prepare(_entry(url, fulltext=False))
    assert doc.clean.text == "Crane operators accepted a revised offer from the port authority."
    assert http_server.requests == []


def test_long_entry_is_not_fetched(
    settings: Settings, http_server: LoopbackServer, detector: LanguageDetector
) -> None:
    """An entry that already carries at least INGEST_FULLTEXT_MIN_WORDS words keeps its own body."""
    url = _served(http_server)
    body = "<p>" + " ".join(["Cranes moved again at the harbour today."] * 20) + "</p>"
    preparer = Preparer(detector, fetcher=page_fetcher(settings), fulltext_min_words=120)
    doc = preparer.prepare(_entry(url, fulltext=True, content=body))
    assert doc.clean.text.startswith("Cranes moved again")
    assert http_server.requests == []


def test_failed_page_fetch_keeps_the_entry(
    settings: Settings, http_server: LoopbackServer, detector: LanguageDetector
) -> None:
    """A page that answers 404 leaves the feed's summary in place."""
    url = http_server.url("/gone")
    doc = Preparer(detector, fetcher=page_fetcher(settings)).prepare(_entry(url, fulltext=True))
    assert doc.clean.text == "Crane operators accepted a revised offer from the port authority."
    assert [r.path for r in http_server.requests] == ["/gone"]


def test_unsafe_page_url_is_refused(detector: LanguageDetector, http_server: LoopbackServer) -> None:
    """Without loopback allowed, the page fetch is refused like a feed fetch and the summary stays."""
    url = _served(http_server)
    strict = Settings.from_env({"INGEST_LOG_LEVEL": "warning"})
    doc = Preparer(detector, fetcher=page_fetcher(strict)).prepare(_entry(url, fulltext=True))
    assert doc.clean.text == "Crane operators accepted a revised offer from the port authority."
    assert http_server.requests == []


def test_feed_fulltext_switch_is_stored(store: Store) -> None:
    """`fulltext` is a stored feed field (both backends); adding again with it switches it on."""
    plain = store.add_feed("https://plain.example/rss")
    full = store.add_feed("https://full.example/rss", fulltext=True)
    assert plain.fulltext is False and full.fulltext is True
    assert store.get_feed(full.id).fulltext is True
    assert store.add_feed("https://plain.example/rss", fulltext=True).fulltext is True


def test_pipeline_applies_the_stored_feed_switch(
    store: Store,
    redis_client: redis.Redis,
    settings: Settings,
    http_server: LoopbackServer,
    detector: LanguageDetector,
) -> None:
    """Entries of a feed added with `fulltext` are completed from their page and stored that way."""
    url = _served(http_server)
    feed = store.add_feed("https://courier.example/rss", fulltext=True)
    preparer = Preparer(detector, fetcher=page_fetcher(settings))
    pipeline = Pipeline(store, Deduplicator(redis_client, prefix="t:fulltext:"), preparer)
    entry = replace(_entry(url, fulltext=False), feed_id=feed.id)
    stored = pipeline.process([entry]).stored
    assert len(stored) == 1
    assert stored[0].text.startswith("The container cranes at the northern harbour")
    assert stored[0].author == "Maren Tollefsen"
