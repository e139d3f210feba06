"""Feed decoding in the order real feeds need, and which of an entry's texts becomes its body."""

from __future__ import annotations

import codecs

import feedparser
import pytest

from ingest.clean import clean_document
from ingest.models import FetchResult, ParsedFeed, RawEntry
from ingest.parse import parse_feed
from ingest.parse.encoding import decode_feed, reads_as_western
from tests.conftest import FIXTURES

FEEDS = FIXTURES / "feeds"


def _parse(content: bytes, headers: dict[str, str] | None = None) -> ParsedFeed:
    result = FetchResult(
        url="https://feeds.example.com/feed", status=200, content=content, headers=headers or {}
    )
    return parse_feed(result, feed_id=3, feed_url="https://feeds.example.com/feed")


def _rss(title: str, description: str, declaration: str = "") -> str:
    decl = f' encoding="{declaration}"' if declaration else ""
    return (
        f'<?xml version="1.0"{decl}?>\n<rss version="2.0"><channel><title>Feed</title>'
        f"<item><title>{title}</title><guid>g1</guid><description>{description}</description></item>"
        "</channel></rss>"
    )


def _clean(entry: RawEntry) -> str:
    return clean_document(
        entry.title,
        entry.content,
        is_html=entry.is_html,
        summary=entry.summary,
        learnt_suffix=entry.title_suffix,
    ).text


def test_undeclared_windows_1252_portuguese_reads_as_feedparser_reads_it() -> None:
    """Short Portuguese text in windows-1252 with no declaration is not read as a Central European page."""
    raw = (FEEDS / "undeclared_cp1252_pt.xml").read_bytes()
    feed = _parse(raw)
    titles = [e.title for e in feed.entries]
    assert titles == ["Eleições: a liderança está definida", "Governo está a preparar mudança na agência"]
    assert feed.entries[0].content.startswith("A decisão foi tomada ontem à noite")
    assert titles == [e.title for e in feedparser.parse(raw).entries]  # never worse than feedparser alone
    assert any("windows-1252" in w or "cp1252" in w for w in feed.warnings)


@pytest.mark.parametrize(
    ("codec", "text"),
    [
        (
            "cp1250",
            "Zażółć gęślą jaźń: prezydent Łodzi zapowiedział budowę nowej linii tramwajowej na północ.",
        ),
        ("cp1251", "Правительство утвердило новый бюджет, расходы на образование вырастут."),
        ("cp1254", "Belediye başkanı yeni tramvay hattını açtı, öğrenciler için ulaşım ücretsiz olacak."),
        ("cp1252", "Der Bürgermeister hat die Straßenbahn eröffnet: „Ein großer Tag“, sagte er."),
    ],
)
def test_undeclared_single_byte_text_keeps_its_own_encoding(codec: str, text: str) -> None:
    """Bytes that do not read as Western European text go to the detector: Polish, Russian, Turkish."""
    feed = _parse(_rss(text[:30], text).encode(codec))
    assert feed.entries[0].content == text


def test_http_charset_comes_before_the_xml_declaration() -> None:
    """The server's charset wins over a wrong declaration in the document, as long as the bytes decode."""
    text = "Метро продлевает часы работы"
    raw = _rss(text, text, declaration="windows-1251").encode("koi8-r")
    feed = _parse(raw, {"content-type": "application/rss+xml; charset=koi8-r"})
    assert feed.entries[0].title == text


def test_single_byte_charset_loses_to_valid_utf8() -> None:
    """A server default of ISO-8859-1 in front of UTF-8 bytes: the UTF-8 is what the document is."""
    text = "A liderança está definida após a reunião"
    raw = _rss(text, text, declaration="utf-8").encode("utf-8")
    feed = _parse(raw, {"content-type": "text/xml; charset=ISO-8859-1"})
    assert feed.entries[0].title == text


def test_byte_order_mark_wins_over_every_declaration() -> None:
    """UTF-16 with its BOM decodes even when the server says otherwise."""
    text = "Café com leite"
    raw = codecs.BOM_UTF16_LE + _rss(text, text, declaration="utf-16").encode("utf-16-le")
    assert _parse(raw, {"content-type": "application/xml; charset=iso-8859-1"}).entries[0].title == text


def test_a_false_utf16_declaration_is_ignored() -> None:
    """ "UTF-16" declared on ASCII-compatible bytes cannot be true: the bytes are read as UTF-8."""
    text, codec, source = decode_feed(_rss("Ação", "Ação", declaration="UTF-16").encode(), {})
    assert "Ação" in text and (codec, source) == ("utf-8", "utf-8")


def test_western_check() -> None:
    """Western European text reads as such in windows-1252; Baltic and Cyrillic bytes do not."""
    assert reads_as_western("A decisão foi tomada à noite, “disse” o ministro – já.")
    assert not reads_as_western("Распоряжение правительства".encode("cp1251").decode("cp1252"))
    assert not reads_as_western("Šiandien Vilniuje įvyks žiemos šventė".encode("cp1257").decode("cp1252"))


def test_empty_content_encoded_does_not_hide_a_long_description() -> None:
    """Podcast feeds: an empty (or image-only) content:encoded beside the real text in the description."""
    feed = _parse((FEEDS / "podcast_empty_content.xml").read_bytes())
    night, tugs, _ = feed.entries
    assert night.content.startswith("<p>This week we spend a night with the crane operators")
    assert night.summary is None  # the description became the body; no second text to call a summary
    assert tugs.content.startswith("<p>Three tug captains") and tugs.summary is None  # image-only: no text
    for entry in (night, tugs):
        assert len(_clean(entry)) > 100


def test_residue_only_body_falls_back_to_the_description() -> None:
    """A content:encoded holding only a share row and a comments link: the description is the body."""
    entry = _parse((FEEDS / "podcast_empty_content.xml").read_bytes()).entries[2]
    assert "Share this" in entry.content  # the longer text, but nothing in it is article
    doc = clean_document(entry.title, entry.content, summary=entry.summary)
    assert doc.text.startswith("The harbour master answers listener questions about the dredging")
    assert "Share" not in doc.text and doc.summary == doc.text


def test_missing_summary_is_the_first_sentences_of_the_body() -> None:
    """No summary in the feed (or only residue): the body's leading sentences, not None."""
    body = (
        "<p>The ferry returned on Monday. It had been away four months. Crews worked nights.</p><p>More.</p>"
    )
    assert clean_document("Ferry", body).summary == (
        "The ferry returned on Monday. It had been away four months. Crews worked nights."
    )
    residue = clean_document("Ferry", body, summary="<p>Original title: Ferry back</p><p>[ad_1]</p>")
    assert (
        residue.summary == "The ferry returned on Monday. It had been away four months. Crews worked nights."
    )
    long_first = "<p>" + "A long sentence about the harbour and its ferry " * 12 + ".</p>"
    summary = clean_document("Ferry", long_first).summary or ""
    assert 100 < len(summary) <= 301 and summary.endswith("…")


def test_json_feed_body_is_the_fullest_text() -> None:
    """JSON Feed: an empty content_html beside a content_text; the item summary stays the summary."""
    doc = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": [{"id": "1", "title": "T",'
        b' "content_html": "<p></p>", "content_text": "The full text of the item, a few sentences long.",'
        b' "summary": "Short."}]}'
    )
    [entry] = _parse(doc).entries
    assert (entry.content, entry.is_html, entry.summary) == (
        "The full text of the item, a few sentences long.",
        False,
        "Short.",
    )
