"""Titles: entities and markup gone, a site suffix cut only when it names the site."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ingest.clean import clean_document, clean_title
from ingest.clean.site import site_label
from ingest.clean.title import learn_suffix, title_text
from ingest.models import FetchResult, RawEntry
from ingest.parse import parse_feed
from tests.conftest import FIXTURES


def _entries(name: str) -> list[RawEntry]:
    raw = (FIXTURES / "feeds" / name).read_bytes()
    result = FetchResult(url="https://feeds.example.com/f", status=200, content=raw, headers={})
    return parse_feed(result, feed_id=1, feed_url="https://feeds.example.com/f").entries


def _stored_title(entry: RawEntry) -> str:
    return clean_document(
        entry.title,
        entry.content,
        url=entry.url,
        feed_title=entry.feed_title,
        summary=entry.summary,
        learnt_suffix=entry.title_suffix,
    ).title


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Principal&#8217;s Office", "Principal’s Office"),
        ("Prices from &amp;#x0024;1950", "Prices from $1950"),  # escaped twice
        ("Tom &amp;amp; Jerry", "Tom & Jerry"),
        ("E=mc<sup>2</sup> explained", "E=mc2 explained"),
        ("<p>title in p</p>", "title in p"),
        ('Ballot <script>track("t")</script>results', "Ballot results"),
        ("x < y and y > z", "x < y and y > z"),
    ],
)
def test_title_text(raw: str, expected: str) -> None:
    """Entities are decoded until none are left; tags and script content go; a bare < stays."""
    assert title_text(raw) == expected


def test_feed_titles_keep_their_text() -> None:
    """Entities and markup in feed titles are decoded; a club name ending one title is not a suffix."""
    titles = [_stored_title(e) for e in _entries("titles_markup.xml")]
    assert titles == [
        "Kaartverkoop FC Twente - FC Utrecht",  # the feed is FC Utrecht; its titles share no suffix
        "Principal’s Office opens a $1950 fund",
        "Onze 10e zege op rij",
        "Selectie bekend voor de bekerfinale",
    ]


def test_a_suffix_most_titles_share_is_learnt_and_cut() -> None:
    """ " | Radio Example" on most titles of the feed is its suffix (a section before it goes too)."""
    entries = _entries("titles_site_suffix.xml")
    assert {e.title_suffix for e in entries} == {"Radio Example"}
    assert [_stored_title(e) for e in entries] == [
        "Lwowska Fala odc. 78 Wrzesień 1939",
        "Lwowska Fala odc. 77 Kresy",
        "Rozmowa dnia: budżet miasta",
        "Koncert noworoczny - Filharmonia Śląska",  # no shared suffix here: kept whole
    ]


def test_learn_suffix_needs_enough_titles() -> None:
    """Three titles say nothing; four without a shared ending say "none"; dates do not count as one."""
    assert learn_suffix(["A | S", "B | S", "C | S"]) is None
    assert learn_suffix(["A | S", "B | S", "C | S", "D"]) == "S"
    podcast = [f"Taverncast - Episode {n} - 8/{n}/06" for n in range(20, 26)]
    assert learn_suffix(podcast) == ""
    assert clean_title(podcast[0], feed_title="Taverncast", learnt_suffix="") == podcast[0]


@pytest.mark.parametrize(
    ("raw", "url", "names", "expected"),
    [
        ("Blind date | Film | The Guardian", "https://www.theguardian.com/film/x", [], "Blind date"),
        (
            "Pound slides again - Telegraph",
            "https://www.telegraph.co.uk/business/x",
            [],
            "Pound slides again",
        ),
        (
            "Storm warning as 80mph winds batter the coast | Latest News | Breaking News UK | Daily Star",
            "https://www.dailystar.co.uk/news/x",
            [],
            "Storm warning as 80mph winds batter the coast",
        ),
        ("Markets close higher - CNN.com", "https://edition.cnn.com/2024/x", [], "Markets close higher"),
        (
            "台风登陆福建 - BBC中文网 - 两岸三地",
            "https://www.bbc.com/zhongwen/x",
            ["BBC News 中文"],
            "台风登陆福建",
        ),
        (
            "Detenido un conductor » Local » Noticias » Ultima Hora Mallorca",
            "https://www.ultimahora.es/noticias/local/x.html",
            [],
            "Detenido un conductor",
        ),
        ("俄方表态_搜狐", "https://www.sohu.com/a/1", [], "俄方表态"),
        (
            "Pos tefeciliği soruşturması | NTV Haber",
            "https://www.ntv.com.tr/x",
            [],
            "Pos tefeciliği soruşturması",
        ),
        (
            "Oil rises - Reuters poll shows",
            "https://www.example-news.com/x",
            [],
            "Oil rises - Reuters poll shows",
        ),
        (
            "Biden - Trump debate: five takeaways",
            "https://www.cnn.com/x",
            [],
            "Biden - Trump debate: five takeaways",
        ),
    ],
)
def test_site_suffixes_named_by_the_page(raw: str, url: str, names: list[str], expected: str) -> None:
    """Suffixes named by the registrable domain or og:site_name go, chained sections and CJK forms too."""
    label = site_label(urlsplit(url).hostname)
    assert clean_title(raw, site_names=[*names, *([label] if label else [])]) == expected
    if not names:  # the URL alone is evidence enough: the clean stage finds the same title
        assert clean_document(raw, "<p>Body.</p><p>More body.</p>", url=url).title == expected


def test_registrable_domain_label() -> None:
    """The public suffix list, not the second label from the end: co.uk hosts are not named "co"."""
    assert site_label("www.telegraph.co.uk") == "telegraph"
    assert site_label("edition.cnn.com") == "cnn"
    assert site_label("news.example.com.au") == "example"
    assert site_label("127.0.0.1") is None and site_label("localhost") is None
    assert site_label("nakka.example") == "nakka"  # a name the list does not know: the naive label


@pytest.mark.parametrize(
    ("raw", "original", "expected"),
    [
        ("Russia will assist Armenia_Nakka", "Russia will assist Armenia", "Russia will assist Armenia"),
        (
            "Russia will assist Armenia if the conflict...",
            "Russia will assist Armenia if the conflict moves",
            "Russia will assist Armenia if the conflict moves",
        ),
        ("俄方：若冲突蔓延将提供援助_搜狐", "俄方：若冲突蔓延将提供援助", "俄方：若冲突蔓延将提供援助"),
        ("A headline and more", "A headline", "A headline and more"),
        ("Something else entirely", "Russia will assist Armenia", "Something else entirely"),
    ],
)
def test_original_title_wins_over_a_cut_or_suffixed_title(raw: str, original: str, expected: str) -> None:
    """An "Original title: X" (原标题) line: X when the page title is X cut short or X with a suffix."""
    assert clean_title(raw, original_title=original) == expected


def test_original_title_line_in_the_body() -> None:
    """The 原标题 line of a Sohu repost fixes a cut title and is not kept as text."""
    body = "<p>原标题：俄外交部：若冲突蔓延至亚美尼亚境内，俄将提供一切必要援助</p><p>中新社莫斯科电。</p>"
    doc = clean_document("俄外交部：若冲突蔓延至亚美尼亚境内…_搜狐", body, url="https://www.sohu.com/a/1")
    assert doc.title == "俄外交部：若冲突蔓延至亚美尼亚境内，俄将提供一切必要援助"
    assert doc.text == "中新社莫斯科电。"


def test_feed_titles_lose_no_prefix() -> None:
    """A feed entry's leading show or site name stays (one entry: nothing learnt); a page's goes."""
    title = "Taverncast - Murloc Contest Winners - 8/26/06"
    assert clean_document(title, "<p>The winners are in.</p>", feed_title="Taverncast").title == title
    page = (
        "<!DOCTYPE html><html><head><title>Coastal Herald - Ferry back in service</title>"
        "<meta property='og:site_name' content='Coastal Herald'></head><body><article>"
        + "<p>The ferry returned to service on Monday after a four-month refit at the yard.</p>" * 4
        + "</article></body></html>"
    )
    assert clean_document("", page).title == "Ferry back in service"
