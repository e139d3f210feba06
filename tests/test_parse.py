"""parse_feed on realistic fixture feeds: formats, encodings, identity, malformed input, entities."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.errors import ParseError
from ingest.models import FetchResult, ParsedFeed
from tests.conftest import FIXTURES

FEEDS = FIXTURES / "feeds"


def result_for(
    content: bytes, headers: dict[str, str] | None = None, url: str = "https://feeds.example.com/feed"
) -> FetchResult:
    return FetchResult(url=url, status=200, content=content, headers=headers or {})


def parse(name: str, headers: dict[str, str] | None = None, **kwargs: int) -> ParsedFeed:
    from ingest.parse import parse_feed

    content = (FEEDS / name).read_bytes()
    return parse_feed(
        result_for(content, headers), feed_id=7, feed_url="https://feeds.example.com/feed", **kwargs
    )


def parse_bytes(content: bytes, headers: dict[str, str] | None = None) -> ParsedFeed:
    from ingest.parse import parse_feed

    return parse_feed(result_for(content, headers), feed_id=1, feed_url="https://feeds.example.com/feed")


def test_rss091_without_guids_keys_on_canonical_links() -> None:
    """RSS 0.91 items without guid get url: keys with tracking params, fragment and host case removed."""
    feed = parse("rss091.xml")
    assert (feed.title, feed.link, feed.language) == ("Harbour Gazette", "https://gazette.example.com/", "en")
    keys = [e.entry_key for e in feed.entries]
    assert keys == [
        "url:https://gazette.example.com/news/ferry-winter?id=7",
        "url:https://gazette.example.com/news/cafe-reopens",
    ]
    assert feed.entries[1].title == "Café on the quay reopens"
    assert feed.entries[0].feed_id == 7 and feed.entries[0].feed_title == "Harbour Gazette"


def test_rdf_dates_creators_and_impossible_date() -> None:
    """RSS 1.0/RDF: dc:date becomes aware UTC, dc:creator the author, 0000-00-00 becomes None."""
    feed = parse("rss10.rdf")
    first, second = feed.entries
    assert first.published_at == datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    assert first.author == "Anna Berger" and first.language_hint == "de"
    assert second.published_at is None
    assert first.entry_key == "guid:https://science.example.org/a/quantum-sensor"


def test_rss20_content_encoded_is_the_fullest_body() -> None:
    """content:encoded wins over description, which stays as the summary; ttl and guid are read."""
    feed = parse("rss20_content.xml")
    tram = feed.entries[0]
    assert tram.content.startswith("<p>The council voted 31 to 12 in favour of the new tram line")
    assert "three years" in tram.content and tram.is_html
    assert tram.summary == "The council voted 31 to 12 in favour."
    assert tram.entry_key == "guid:citywire-10231" and tram.author == "Maria Lopez"
    assert tram.published_at == datetime(2024, 5, 14, 6, 15, tzinfo=UTC)
    assert feed.ttl_minutes == 30 and feed.language == "en"
    assert feed.entries[1].published_at is None  # "not a date"


def test_javascript_link_dropped_but_entry_kept() -> None:
    """A javascript: link becomes url=None; the entry falls back to a content-hash key."""
    entry = parse("rss20_content.xml").entries[2]
    assert entry.url is None and entry.entry_key.startswith("hash:") and len(entry.entry_key) == 5 + 64


def test_atom_content_types_and_language() -> None:
    """Atom: html content is HTML, text content is not; xml:lang is the hint; published beats updated."""
    feed = parse("atom.xml")
    html, text = feed.entries
    assert html.is_html and html.content.startswith("<p>Les pêcheurs") and html.summary == "Résumé court."
    assert not text.is_html and text.content == "Une dépêche en texte brut, sans balises."
    assert html.published_at == datetime(2024, 5, 31, 16, 45, tzinfo=UTC)
    assert html.author == "Claire Dubois" and html.language_hint == "fr"
    assert html.entry_key == "guid:urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"


def test_json_feed_11() -> None:
    """JSON Feed 1.1: html/text content, authors, item language, date_modified fallback."""
    feed = parse("jsonfeed11.json", {"content-type": "application/feed+json"})
    release, note = feed.entries
    assert (feed.title, feed.link, feed.language) == ("Tech Notes", "https://technotes.example.io/", "en")
    assert release.is_html and release.summary == "Version 2.0 is out." and release.author == "Sam Rivera"
    assert release.published_at == datetime(2024, 7, 1, 16, 0, tzinfo=UTC)
    assert release.entry_key == "guid:2024-07-01-release"
    assert not note.is_html and note.url is None and note.language_hint == "en"
    assert note.published_at == datetime(2024, 7, 2, 10, 0, tzinfo=UTC)


def test_gb2312_declared_feed_decodes_gbk_characters() -> None:
    """A gb2312-declared feed with a GBK-only character (镕) decodes correctly."""
    feed = parse("gb2312.xml")
    assert feed.title == "新华快讯" and feed.language == "zh"
    assert feed.entries[0].title == "北京今日迎来降雪" and "朱镕基" in feed.entries[0].content


def test_koi8r_feed_decodes() -> None:
    """A koi8-r feed decodes to Cyrillic."""
    entry = parse("koi8r.xml").entries[0]
    assert entry.title == "В Мурманске открылся новый порт" and entry.language_hint == "ru"


def test_undeclared_cp1251_is_sniffed() -> None:
    """windows-1251 bytes without any declaration are sniffed, not read as windows-1252."""
    feed = parse("undeclared_cp1251.xml")
    assert feed.entries[0].title == "Метро продлевает часы работы в праздники"
    assert any("detected cp1251" in w for w in feed.warnings)


def test_wrong_http_charset_does_not_garble_declared_xml() -> None:
    """koi8-r bytes declared in XML keep decoding when the server claims nothing useful."""
    feed = parse("koi8r.xml", {"content-type": "application/rss+xml"})
    assert feed.title == "Новости Севера"


def test_malformed_but_recoverable_feed_warns() -> None:
    """A bare & and an unclosed tag are recovered with a warning, entries intact."""
    feed = parse("malformed_recoverable.xml")
    assert [e.entry_key for e in feed.entries] == ["guid:sloppy-1", "guid:sloppy-2"]
    assert feed.entries[0].title == "Fish & Chips prices rise"
    assert any(w.startswith("malformed feed recovered") for w in feed.warnings)


def test_html_page_is_not_a_feed() -> None:
    """An HTML page raises ParseError('not a feed: ...')."""
    with pytest.raises(ParseError, match=r"^not a feed: looks like an HTML page$"):
        parse("not_a_feed.html", {"content-type": "text/html"})


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"   ",
        b"\x00\x01garbage\xff\xfe",
        b"just some words",
        b'{"hello": "world"}',
        b"{not json",
        b"<note><to>x</to></note>",
    ],
)
def test_garbage_is_not_a_feed(content: bytes) -> None:
    """Empty, binary, text, non-feed JSON and non-feed XML are all refused as not a feed."""
    with pytest.raises(ParseError, match=r"^not a feed: "):
        parse_bytes(content)


def test_duplicate_and_missing_guids() -> None:
    """A guid repeated in the document falls back to canonical links; no guid and no link to a hash."""
    feed = parse("duplicate_guids.xml")
    keys = [e.entry_key for e in feed.entries]
    assert keys[:3] == [
        "url:https://repeater.example.com/one",
        "url:https://repeater.example.com/two",
        "guid:unique-3",
    ]
    assert keys[3].startswith("hash:")
    assert keys[4] == "url:https://repeater.example.com/five?x=1"
    assert feed.entries[2].url is None  # a relative permalink guid is no link
    assert len(set(keys)) == len(keys)


def test_entry_keys_are_stable_across_parses() -> None:
    """The same document yields the same keys (hash keys included) every time."""
    assert [e.entry_key for e in parse("duplicate_guids.xml").entries] == [
        e.entry_key for e in parse("duplicate_guids.xml").entries
    ]


def test_max_entries_caps_and_warns() -> None:
    """Only max_entries entries are returned, in document order, with a warning."""
    items = "".join(f"<item><title>n{i}</title><guid>g{i}</guid></item>" for i in range(30))
    from ingest.parse import parse_feed

    doc = f'<rss version="2.0"><channel><title>many</title>{items}</channel></rss>'.encode()
    feed = parse_feed(result_for(doc), feed_id=1, feed_url="https://feeds.example.com/f", max_entries=10)
    assert [e.title for e in feed.entries] == [f"n{i}" for i in range(10)]
    assert "entries capped at 10 of 30" in feed.warnings


def test_billion_laughs_and_external_entities_not_expanded() -> None:
    """Nested entity declarations and SYSTEM entities are neither expanded nor loaded."""
    doc = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY xxe SYSTEM "file:///etc/hostname">
]>
<rss version="2.0"><channel><title>t</title>
<item><title>&lol3;</title><guid>a</guid><description>&xxe;</description></item></channel></rss>"""
    feed = parse_bytes(doc)
    entry = feed.entries[0]
    assert "lollol" not in entry.title and "lollol" not in entry.content
    import socket

    assert socket.gethostname() not in entry.content
    assert any("entity declarations" in w for w in feed.warnings)


def test_relative_links_resolve_against_the_fetched_url() -> None:
    """A relative item link is made absolute against the final fetched URL."""
    from ingest.parse import parse_feed

    doc = (
        b'<rss version="2.0"><channel><title>r</title><item><title>x</title><link>/a/1</link></item>'
        b"</channel></rss>"
    )
    feed = parse_feed(
        result_for(doc, url="https://site.example.com/rss/feed.xml"),
        feed_id=1,
        feed_url="https://old.example.com/feed",
    )
    assert feed.entries[0].url == "https://site.example.com/a/1"


def test_raw_entry_round_trips_through_json() -> None:
    """Parsed entries survive to_dict/from_dict (they travel in RQ jobs)."""
    from ingest.models import RawEntry

    for entry in parse("rss20_content.xml").entries:
        assert RawEntry.from_dict(entry.to_dict()) == entry


def test_websub_hub_and_self_from_atom_links() -> None:
    """An Atom feed's rel="hub" and rel="self" links give the hub and the topic (made absolute)."""
    parsed = parse("websub_atom.xml")
    assert parsed.hub == "https://hub.example.com/"
    assert parsed.self_url == "https://feeds.example.com/atom.xml"


def test_websub_link_header_wins_over_the_document() -> None:
    """The HTTP Link header's hub and self come first, as the WebSub spec orders discovery."""
    link = '<https://hub2.example.com/>; rel="hub", <https://feeds.example.com/canonical>; rel="self"'
    parsed = parse("websub_atom.xml", {"link": link, "content-type": "application/atom+xml"})
    assert (parsed.hub, parsed.self_url) == (
        "https://hub2.example.com/",
        "https://feeds.example.com/canonical",
    )


def test_websub_hub_from_json_feed() -> None:
    """A JSON Feed's `hubs` entry of type WebSub and its feed_url are read."""
    doc = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "J", "feed_url": "https://j.example/f.json",'
        b' "hubs": [{"type": "rssCloud", "url": "https://cloud.example/"},'
        b' {"type": "WebSub", "url": "https://hub.example/"}], "items": []}'
    )
    parsed = parse_bytes(doc)
    assert (parsed.hub, parsed.self_url) == ("https://hub.example/", "https://j.example/f.json")


def test_feed_without_hub() -> None:
    """A feed advertising nothing has no hub."""
    assert parse("rss20_content.xml").hub is None


def test_entry_hash_changes_only_with_content() -> None:
    """The poller's change detector: same entry, same hash; edited body, different hash."""
    from dataclasses import replace

    from ingest.parse import entry_hash

    entry = parse("rss20_content.xml").entries[0]
    assert entry_hash(entry) == entry_hash(parse("rss20_content.xml").entries[0])
    assert entry_hash(replace(entry, content=entry.content + " (updated)")) != entry_hash(entry)
    assert entry_hash(replace(entry, title="Other")) != entry_hash(entry)


def test_feed_html_reaches_the_article_without_scripts_or_markup() -> None:
    """feedparser's own sanitizer is off (the cleaner turns HTML into text): nothing active survives."""
    from ingest.clean import clean_document

    feed = parse_bytes(b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>
<link>http://e.com/</link><item><title>Talks resume</title><link>/world/talks.html</link><guid>g1</guid>
<description>&lt;p&gt;Talks &lt;script&gt;evil()&lt;/script&gt;resume&lt;/p&gt;</description>
<content:encoded><![CDATA[<p>Envoys met <a href="/x">in Geneva</a><style>p{color:red}</style>
<img src=x onerror=alert(1)> on Monday.</p><script>steal()</script><p>Both sides agreed.</p>]]>
</content:encoded></item></channel></rss>""")
    [entry] = feed.entries
    assert entry.url == "https://feeds.example.com/world/talks.html"  # resolved against the feed URL
    doc = clean_document(
        entry.title,
        entry.content,
        is_html=entry.is_html,
        url=entry.url,
        feed_title=feed.title,
        summary=entry.summary,
    )
    assert doc.text == "Envoys met in Geneva on Monday.\n\nBoth sides agreed."
    assert doc.summary == "Talks resume"
