"""Bounds on hostile input: nesting depth before HTML parsing, and a cap on stored text."""

from __future__ import annotations

import redis

from ingest.clean import MAX_TEXT_BYTES, clean_document
from ingest.clean.html import MAX_DEPTH, bound_depth, html_paragraphs
from ingest.clean.text import cap_text
from ingest.dedup.index import Deduplicator
from ingest.language.detect import LanguageDetector
from ingest.models import RawEntry
from ingest.services.prepare import Preparer
from ingest.services.process import Pipeline
from ingest.store.base import Store


def test_deep_nesting_is_flattened_and_the_text_survives() -> None:
    """`"<div>" * n`: tags past MAX_DEPTH are dropped before parsing, their text is kept."""
    n = 20_000
    html = "<div>" * n + "<p>Deep text.</p>" + "</div>" * n + "<p>After.</p>"
    bounded, removed = bound_depth(html)
    assert removed == 2 * (n - MAX_DEPTH)
    assert bounded.count("<div>") == MAX_DEPTH
    assert html_paragraphs(html) == ["Deep text.", "After."]


def test_shallow_markup_is_left_alone() -> None:
    """Real pages nest far less than the bound: the markup passes through unchanged."""
    html = "<article>" + "<section><div><p>Text.</p></div></section>" * 400 + "</article>"
    assert bound_depth(html) == (html, 0)
    unclosed = "<p>One<p>Two<li>Three" * 300  # elements that close themselves add no depth
    assert bound_depth(unclosed) == (unclosed, 0)


def test_text_is_capped_at_a_boundary_with_the_original_size() -> None:
    """200 KB of UTF-8 at most, cut at a paragraph or word; the original size in bytes is kept."""
    body = "\n\n".join(["Ünïcödé words in a paragraph of text."] * 20_000)
    text, original = cap_text(body)
    assert original == len(body.encode("utf-8"))
    assert len(text.encode("utf-8")) <= MAX_TEXT_BYTES
    assert text.endswith("text.") and body.startswith(text)
    assert cap_text("short") == ("short", None)


def test_clean_document_records_the_cut() -> None:
    para = "<p>" + "The harbour ferry sailed again today. " * 40 + "</p>"
    doc = clean_document("Ferry", para * 400)
    assert doc.original_bytes is not None and doc.original_bytes > MAX_TEXT_BYTES
    assert len(doc.text.encode()) <= MAX_TEXT_BYTES
    assert clean_document("Ferry", para).original_bytes is None


def test_capped_article_is_stored_and_sent_with_its_original_size(
    store: Store, redis_client: redis.Redis
) -> None:
    """Both backends keep `original_text_bytes`; the webhook's article object carries it when cut."""
    feed = store.add_feed("https://big.example/rss")
    big = "<p>" + "A very long article body that keeps going. " * 30 + "</p>"
    entries = [
        RawEntry(feed.id, feed.url, key, f"https://big.example/{key}", "Huge entry", content)
        for key, content in (("huge", big * 300), ("small", big))
    ]
    pipeline = Pipeline(store, Deduplicator(redis_client, prefix="t:bounds:"), Preparer(LanguageDetector()))
    stored = {a.entry_key: a for a in pipeline.process(entries).stored}
    assert stored["huge"].original_text_bytes is not None
    assert stored["huge"].original_text_bytes > MAX_TEXT_BYTES >= len(stored["huge"].text.encode())
    assert stored["small"].original_text_bytes is None
    again = store.get_article(stored["huge"].id)
    assert (
        again.original_text_bytes == stored["huge"].original_text_bytes and again.text == stored["huge"].text
    )
    payload = again.to_dict()
    assert payload["original_text_bytes"] == again.original_text_bytes
    assert {"id", "url", "title", "text", "summary", "language", "story_id", "published_at"} <= payload.keys()
    assert "original_text_bytes" not in stored["small"].to_dict()  # uncut articles: the object as before
