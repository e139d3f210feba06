"""Residue on whole pages and in feed bodies: share rows, lists, comments, promos, credits, notices."""

from __future__ import annotations

import pytest

from ingest.clean import clean_document, load_rules
from ingest.clean.html import is_whole_page
from tests.conftest import FIXTURES

PAGE = (FIXTURES / "pages" / "whole_news_page.html").read_text(encoding="utf-8")
PAGE_URL = "https://www.coastalherald.example.co.uk/local/harbour-ferry-returns"
ARTICLE = [
    "The harbour ferry MV Selkie returned to service on Monday",
    "The vessel, built in 1998, was fitted with a new hybrid engine",
    "Passengers queued from six in the morning",
    "Timetable changes",
    "The summer timetable starts on 15 April",
    "The operator warned that the crossing may be cancelled",
    "Councillor Anne Mackay said a second vessel would be needed",
]
CHROME = (
    "Skip to",
    "Log in",
    "Weather",
    "Tweet",
    "Share",
    "#ferry",
    "Getty",
    "Trending",
    "Lifeboat",
    "Comments",
    "ago",
    "Reply",
    "About time",
    "alerts",
    "newsletter",
    "subscribers",
    "©",
)


def _starts(text: str) -> list[str]:
    return [p[: len(a)] for p, a in zip(text.split("\n\n"), ARTICLE, strict=False)]


def test_whole_page_is_extracted_like_full_text() -> None:
    """A whole page gives the article only: no menus, share rows, trending list, comments or footer."""
    doc = clean_document("", PAGE, url=PAGE_URL)
    assert doc.title == "Harbour ferry returns after winter refit"
    assert _starts(doc.text) == ARTICLE and len(doc.text.split("\n\n")) == len(ARTICLE)
    for chrome in CHROME:
        assert chrome not in doc.text, chrome
    assert doc.summary is not None and doc.summary.startswith("The harbour ferry MV Selkie returned")


def test_fragment_stays_a_fragment_and_the_rules_clean_it() -> None:
    """The same article as a body fragment is not re-extracted; the rules drop its residue and blocks."""
    fragment = PAGE[PAGE.index("<main") : PAGE.index("</footer>") + len("</footer>")]
    assert not is_whole_page(fragment) and is_whole_page(PAGE)
    doc = clean_document(
        "Harbour ferry returns after winter refit", fragment, feed_title="The Coastal Herald"
    )
    paragraphs = doc.text.split("\n\n")
    assert paragraphs[0] == "By Tom Abernethy, Local reporter"  # a byline with a role stays
    assert [p[: len(a)] for p, a in zip(paragraphs[1:], ARTICLE, strict=True)] == ARTICLE
    for chrome in CHROME:
        assert chrome not in doc.text, chrome


@pytest.mark.parametrize(
    "para",
    [
        "- Tweet this",
        "- Share this",
        "Share this: Facebook | Twitter",
        "Share this Story : Financial Post",
        "Artikel teilen",
        "Partager sur Facebook",
        "Поделиться",
        "分享到微信",
        "Trending On Mirror",
        "Trending Now on Example.com",
        "Most Popular",
        "Meistgelesen",
        "Lo más leído",
        "Les plus lus",
        "Самое читаемое",
        "相关新闻",
        "Sponsored Stories",
        "Ads by Google",
        "Hace 28 minutos",
        "14 hours ago",
        "vor 3 Stunden",
        "il y a 2 heures",
        "5 минут назад",
        "3小时前",
        "Comentar",
        "Reply",
        "Antworten",
        "Get reporter alerts",
        "#ferry #harbour #islands",
        "(Getty)",
        "Getty Images",
        "Photo: Ringo H.W. Chiu, AP",
        "Source link",
        "THIS CONTENT IS RESERVED FOR SUBSCRIBERS ONLY",
        "Subscribe to continue reading",
        "Already a subscriber? Log in.",
        "Article réservé aux abonnés",
        "Nur für Abonnenten",
        "Este contenido es exclusivo para suscriptores",
        "付费阅读",
        "This website uses cookies to improve your experience.",
        "Skip to main content",
        "Image Credits: UiPath",
    ],
)
def test_residue_lines_are_dropped(para: str) -> None:
    assert load_rules().dropping_rule(para, None), para


@pytest.mark.parametrize(
    "para",
    [
        "Share prices fell 5% on Monday after the results.",
        "Share the load, says the minister.",
        "More on this later, the spokesman said.",
        "He replied that the trending data was not yet complete.",
        "Comments from the minister were published on Tuesday.",
        "Getty Images sold the archive to a private buyer in 2019, the company said.",
        "The photo: a crowd outside the station, taken minutes before the blast, was shared widely.",
        "Subscribers to the newspaper received a letter about the price rise.",
        "Twenty minutes ago the ferry left the harbour.",
        "Hace 28 minutos que comenzó la reunión en el ayuntamiento.",
    ],
)
def test_article_text_mentioning_residue_words_is_kept(para: str) -> None:
    assert load_rules().dropping_rule(para, None) is None, para


def test_related_list_is_dropped_up_to_the_next_subheading() -> None:
    """Link lines after a bare "Related" heading go; a subheading before running text stays."""
    paragraphs = [
        "The port reopened on Monday after the strike ended.",
        "Related stories",
        "Cranes return to the quay",
        "Pilots agree new rota",
        "What happens next",
        "The authority will publish a timetable for the remaining works next week, officials said.",
    ]
    kept, removed = load_rules().apply(paragraphs, None)
    assert kept == [paragraphs[0], "What happens next", paragraphs[5]]
    assert removed == paragraphs[1:4]


def test_comment_section_goes_only_when_residue_confirms_it() -> None:
    """Everything after "Comments" goes when comment controls follow; a "Comment" column header stays."""
    article = ["The council approved the budget on Tuesday after a long debate about school funding."] * 3
    comments = ["2 Comments", "Jane", "3 hours ago", "Good news for the schools.", "Reply"]
    kept, _ = load_rules().apply([*article, *comments], None)
    assert kept == article
    table = [
        *article,
        "Comment",
        "new",
        "scheduled_timestamp of the task",
        "Pick up new tasks that are ready.",
    ]
    kept, _ = load_rules().apply(table, None)
    assert kept == [*article, *table[4:]]


def test_ad_marker_trailer_is_dropped() -> None:
    """An autoblog body: [ad_1] ... [ad_2] Source link."""
    body = "<p>[ad_1]</p><p>The mayor opened the new bridge on Friday.</p><p>[ad_2]</p><p>Source link</p>"
    assert clean_document("Bridge opens", body).text == "The mayor opened the new bridge on Friday."


def test_seed_article_summary_is_derived_when_the_description_is_residue() -> None:
    """The demo's seed item: its description is the Original title line, so the summary is the body's lead."""
    from app.demo import demo_feeds
    from ingest.models import FetchResult
    from ingest.parse import parse_feed

    raw = demo_feeds()["/demo/nakka.xml"]
    result = FetchResult(url="https://nakka.example/rss", status=200, content=raw, headers={})
    entry = parse_feed(result, feed_id=1, feed_url=result.url).entries[0]
    doc = clean_document(
        entry.title,
        entry.content,
        url=entry.url,
        feed_title=entry.feed_title,
        summary=entry.summary,
        learnt_suffix=entry.title_suffix,
    )
    assert doc.summary is not None and doc.summary.startswith("China News Agency, Moscow, October 31")


def test_a_heading_that_leads_into_a_passage_is_kept() -> None:
    """A "More from X:" heading before quoted running text belongs to the article: no list follows."""
    paragraphs = [
        "The roommate agreed to be interviewed by the defence, her lawyers said on Friday.",
        "More from NBC's TODAY:",
        "The preliminary hearing is scheduled for June 26 at 9 am, the court said in a filing.",
    ]
    assert load_rules().apply(paragraphs, None)[0] == paragraphs
    trailing = [*paragraphs, "More from The Nation", "Lifeboat crew rescue kayakers", "School roof repairs"]
    assert load_rules().apply(trailing, None)[0] == paragraphs
