"""The match stage: query language semantics, errors, and the many-subscription matcher."""

from __future__ import annotations

import random

import pytest

from ingest.errors import QueryError
from ingest.match import MatchDocument, Matcher, match_query, parse_query
from ingest.models import Match

DOCS = {
    "en": MatchDocument(
        title="Armenia and Azerbaijan agree to a ceasefire",
        text="Armenia’s prime minister said the cease-fire would hold.\n\n"
        "Talks in Yerevan continue; the ceasefires of 2020 failed. Banks reopened.",
        language="en",
        feed_url="https://feeds.bbc.co.uk/news/world/rss.xml",
        url="https://www.bbc.co.uk/news/world-123?x=1",
    ),
    "markets": MatchDocument(
        title="Markets rally as inflation eases",
        text="Stocks rose. The central bank kept its rates unchanged; no rumour of a cut.",
        language="en-GB",
        feed_url="https://www.reuters.com/markets/rss",
        url="https://reuters.com/markets/a1",
    ),
    "zh": MatchDocument(title="亚美尼亚与阿塞拜疆停火", text="双方同意在纳卡地区停火。", language="zh"),
    "ja": MatchDocument(title="アルメニアで停戦合意", text="両国は停戦に合意した。", language="ja"),
    "ar": MatchDocument(title="وقف إطلاق النار في غزة", text="أعلنت الحكومةُ وقفَ إطلاق النار.", language="ar"),
    "ru": MatchDocument(
        title="Армения и Азербайджан договорились о перемирии",
        text="Ереван подтвердил ПЕРЕМИРИЕ. Ёлка у дома.",
        language="ru",
    ),
    "de": MatchDocument(
        title="Waffenstillstand in München",
        text="Die Bürger begrüßen die Einigung auf der Straße.",
        language="de",
    ),
    "fr": MatchDocument(
        title="Élection présidentielle",
        text="Le président a déclaré l'état d'urgence à Besançon.",
        language="fr",
    ),
    "el": MatchDocument(title="Εκεχειρία στην Αρμενία", text="Η ΕΚΕΧΕΙΡΊΑ ισχύει.", language="el"),
}

# (query, document, expected)
CASES = [
    ("Armenia", "en", True),
    ("armenia", "en", True),
    ("arm", "en", False),
    ("arm*", "en", True),
    ("Armenia's", "en", True),
    ("ceasefire", "en", True),
    ("cease-fire", "en", True),
    ("ceasefires", "en", True),
    ('"cease fire"', "en", False),
    ("holds", "en", True),
    ("bank", "en", True),
    ("Yerevan 2020", "en", True),
    ("Armenia AND Azerbaijan", "en", True),
    ("Armenia Georgia", "en", False),
    ("Armenia OR Georgia", "en", True),
    ("Armenia -Georgia", "en", True),
    ("Armenia NOT Azerbaijan", "en", False),
    ("NOT Georgia", "en", True),
    ("-Armenia", "en", False),
    ("(Armenia OR Georgia) (ceasefire OR truce) -rumour", "en", True),
    ('"prime minister"', "en", True),
    ('"minister prime"', "en", False),
    ('"minister prime"~1', "en", True),
    ('"Armenia ceasefire"~5', "en", True),
    ('"Armenia ceasefire"~4', "en", False),
    ("Armenia NEAR/5 ceasefire", "en", True),
    ("Armenia NEAR/4 ceasefire", "en", False),
    ("ceasefir* NEAR/5 Armenia", "en", True),
    ('(Georgia OR Armenia) NEAR/5 "cease-fire"', "en", True),
    ('"agree to a" NEAR/1 ceasefire', "en", True),
    ("Azerbaijan NEAR/3 Yerevan", "en", False),
    ("title:Yerevan", "en", False),
    ("title:Azerbaijan", "en", True),
    ('title:"agree to a ceasefire"', "en", True),
    ("title:(Yerevan OR Azerbaijan)", "en", True),
    ("title:ceasefir*", "en", True),
    ("lang:en Armenia", "en", True),
    ("lang:fr Armenia", "en", False),
    ("domain:bbc.co.uk", "en", True),
    ("domain:co.uk", "en", True),
    ("domain:c.co.uk", "en", False),
    ("domain:bbc.com", "en", False),
    ("feed:feeds.bbc.co.uk", "en", True),
    ("feed:https://feeds.bbc.co.uk/news/world/rss.xml", "en", True),
    ("feed:http://feeds.bbc.co.uk/news/world/rss.xml/", "en", True),
    ("feed:feeds.bbc.co.uk/sport/rss.xml", "en", False),
    ("feed:bbc.co.uk", "en", False),
    ("inflation", "markets", True),
    ("rate", "markets", True),
    ("NOT ceasefire", "markets", True),
    ("lang:en -Armenia", "markets", True),
    ("bank -rumour", "markets", False),
    ("feed:reuters.com domain:reuters.com", "markets", True),
    ("news", "markets", False),
    ("停火", "zh", True),
    ("亚美尼亚", "zh", True),
    ("亚美尼亚 停火", "zh", True),
    ("亚美尼亚停火", "zh", False),
    ("尼亚与", "zh", True),
    ("阿塞拜疆 NEAR/3 停火", "zh", True),
    ("lang:zh -停战", "zh", True),
    ("停戦", "ja", True),
    ("アルメニア", "ja", True),
    ("アルメニア NEAR/2 停戦", "ja", True),
    ("停火", "ja", False),
    ("وقف", "ar", True),
    ("الحكومة", "ar", True),
    ("اطلاق النار", "ar", True),
    ('"وقف اطلاق النار"', "ar", True),
    ("غزة -الحكومة", "ar", False),
    ("армения", "ru", True),
    ("АРМЕНИЯ Азербайджан", "ru", True),
    ("перемирие", "ru", True),
    ("елка", "ru", True),
    ("Армения NEAR/2 Азербайджан", "ru", True),
    ("Москва", "ru", False),
    ("München", "de", True),
    ("munchen", "de", True),
    ("Strasse", "de", True),
    ("burger", "de", True),
    ("Waffen", "de", False),
    ("Waffen*", "de", True),
    ("election", "fr", True),
    ("présidentielle", "fr", True),
    ("etat", "fr", True),
    ("Besancon", "fr", True),
    ("urgence NEAR/2 Besançon", "fr", True),
    ("αρμενια", "el", True),
    ("ΕΚΕΧΕΙΡΙΑ", "el", True),
    ("title:εκεχειρια lang:el", "el", True),
]


@pytest.mark.parametrize(("query", "doc", "expected"), CASES)
def test_query_semantics(query: str, doc: str, expected: bool) -> None:
    """Each query matches exactly the documents the language contract says it does."""
    assert (match_query(query, DOCS[doc]) is not None) is expected


def test_matcher_agrees_with_single_queries() -> None:
    """Indexed matching of all table queries at once returns what evaluating each one alone does."""
    matcher = Matcher((f"q{i}", query) for i, (query, _, _) in enumerate(CASES))
    for name, doc in DOCS.items():
        expected = {f"q{i}" for i, (query, _, _) in enumerate(CASES) if match_query(query, doc)}
        got = {m.subscription_id for m in matcher.match(doc)}
        assert got == expected, name


def test_matcher_agrees_on_random_queries() -> None:
    """Random queries over a small vocabulary: the index never drops a match nor invents one."""
    rng = random.Random(3)
    words = ["armenia", "ceasefire", "yerevan", "bank", "rates", "georgia", "markets", "2020", "prime"]
    shapes = [
        "{a}",
        "{a} {b}",
        "{a} OR {b}",
        "({a} OR {b}) {c}",
        "{a} -{b}",
        '"{a} {b}"~3',
        "{a} NEAR/4 {b}",
        "{p}* {b}",
        "-{a}",
        "title:{a} OR {b}",
        "NOT ({a} OR {b})",
        "lang:en {a}",
    ]
    queries = []
    for i in range(400):
        a, b, c = rng.sample(words, 3)
        queries.append((f"r{i}", rng.choice(shapes).format(a=a, b=b, c=c, p=a[:4])))
    matcher = Matcher(queries)
    for doc in DOCS.values():
        expected = {sid for sid, query in queries if match_query(query, doc)}
        assert {m.subscription_id for m in matcher.match(doc)} == expected


# (query, words expected in the error message, position)
ERRORS = [
    ("", "empty query", 0),
    ("   ", "empty query", 0),
    ("(Armenia ceasefire", "unclosed parenthesis", 0),
    ("Armenia (ceasefire OR truce", "unclosed parenthesis", 8),
    ("Armenia ceasefire)", "unmatched closing parenthesis", 17),
    ("Armenia AND", "AND has nothing on its right", 8),
    ("OR Armenia", "OR has nothing on its left", 0),
    ("Armenia OR", "OR has nothing on its right", 8),
    ("Armenia AND OR truce", "AND has nothing on its right", 8),
    ("Armenia NOT", "NOT has nothing to exclude", 8),
    ("Armenia -", "'-' must be directly followed", 8),
    ('Armenia ""', "empty phrase", 8),
    ('Armenia "ceasefire', "unterminated phrase", 8),
    ("topic:Armenia", "unknown field 'topic:'", 0),
    ("Armenia title: x", "title: needs a value", 8),
    ("*", "bare '*'", 0),
    ("Armenia ce*", "too short", 8),
    ("arm*enia", "only allowed at the end", 3),
    ("Armenia NEAR ceasefire", "NEAR needs a distance", 8),
    ("Armenia NEAR/ ceasefire", "NEAR needs a distance", 8),
    ("Armenia NEAR/0 ceasefire", "between 1 and", 8),
    ("NEAR/5 ceasefire", "nothing on its left", 0),
    ("Armenia NEAR/5", "nothing on its right", 8),
    ("Armenia NEAR/5 (ceasefire truce)", "needs a word, phrase or OR group", 15),
    ("Armenia NEAR/5 -truce", "nothing on its right", 8),
    ('"a b"~ c', "needs a number", 5),
    ("()", "empty parentheses", 0),
    ("lang:english", "ISO 639-1", 5),
    ("domain:!!", "host name", 7),
    ("!!!", "nothing searchable", 0),
    ("停* 火", "one word of a spaced script", 0),
]


@pytest.mark.parametrize(("query", "message", "position"), ERRORS)
def test_query_errors(query: str, message: str, position: int) -> None:
    """A bad query names its problem and the 0-based position of the culprit."""
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert message in caught.value.reason
    assert caught.value.position == position
    assert caught.value.query == query


def test_query_error_points_at_position() -> None:
    """The error text repeats the query with a caret under the offending character."""
    with pytest.raises(QueryError) as caught:
        parse_query("Armenia AND")
    assert str(caught.value).endswith("Armenia AND\n          ^")


def test_terms_lists_normalized_positive_terms() -> None:
    """terms() shows each positive word, phrase and wildcard once, normalized, negations left out."""
    query = parse_query('Armenia\'s "Cease-Fire talks" OR ceasefir* -rumour title:Armenia "a b"~3 停火')
    assert query.terms() == ["armenia", "ceasefire talk", "ceasefir*", '"a b"~3', "停火"]


def test_matched_terms_are_original_forms_that_occurred() -> None:
    """A match reports the query's words as typed, only those found, never negated ones."""
    match = match_query('(Armenia OR Georgia) "prime minister" ceasefir* -rumour', DOCS["en"], "s1")
    assert match == Match("s1", ["Armenia", "prime minister", "ceasefir*"])


def test_matched_terms_respect_title_scope() -> None:
    """A title: term that occurs only in the body is not reported as matched."""
    match = match_query("title:(Yerevan OR Azerbaijan)", DOCS["en"])
    assert match is not None
    assert match.matched_terms == ["Azerbaijan"]


def test_add_remove_and_replace() -> None:
    """Subscriptions can be added, replaced by id and removed; the index follows."""
    matcher = Matcher([("a", "Armenia"), ("b", "Georgia")])
    assert [m.subscription_id for m in matcher.match(DOCS["en"])] == ["a"]
    matcher.add("b", "Yerevan")
    assert [m.subscription_id for m in matcher.match(DOCS["en"])] == ["a", "b"]
    assert matcher.remove("a") is True
    assert matcher.remove("a") is False
    assert [m.subscription_id for m in matcher.match(DOCS["en"])] == ["b"]
    assert len(matcher) == 1 and "b" in matcher and "a" not in matcher


def test_shared_query_text_serves_every_subscriber() -> None:
    """Two subscriptions with the same query both match; removing one keeps the other."""
    matcher = Matcher([("a", "ceasefire -rumour"), ("b", "ceasefire -rumour")])
    assert [m.subscription_id for m in matcher.match(DOCS["en"])] == ["a", "b"]
    matcher.remove("a")
    assert matcher.match(DOCS["en"]) == [Match("b", ["ceasefire"])]


def test_queries_without_positive_terms_are_still_evaluated() -> None:
    """Pure NOT and field-only queries match although no word indexes them."""
    matcher = Matcher(
        [
            ("not", "-rumour"),
            ("lang", "lang:en"),
            ("nowild", "NOT ceasefir*"),
            ("domain", "domain:reuters.com"),
        ]
    )
    assert [m.subscription_id for m in matcher.match(DOCS["en"])] == ["lang", "not"]
    assert [m.subscription_id for m in matcher.match(DOCS["markets"])] == ["domain", "lang", "nowild"]
    assert [m.subscription_id for m in matcher.match(DOCS["zh"])] == ["not", "nowild"]


def test_wildcards_added_after_matching_are_found() -> None:
    """A wildcard subscription added after the automaton was built is picked up, and dropped on removal."""
    matcher = Matcher([("a", "Armenia")])
    matcher.match(DOCS["en"])
    matcher.add("w", "Yerev*")
    assert [m.subscription_id for m in matcher.match(DOCS["en"])] == ["a", "w"]
    matcher.remove("w")
    assert [m.subscription_id for m in matcher.match(DOCS["en"])] == ["a"]


def test_bad_subscription_is_rejected_and_leaves_matcher_unchanged() -> None:
    """add() raises QueryError for a bad query and does not index anything."""
    matcher = Matcher([("a", "Armenia")])
    with pytest.raises(QueryError):
        matcher.add("a", "Armenia AND")
    assert matcher.match(DOCS["en"]) == [Match("a", ["Armenia"])]


def test_document_without_metadata_fails_field_filters() -> None:
    """lang:, feed: and domain: never match an article that lacks the field."""
    doc = MatchDocument(title="Armenia", text="")
    for query in ("lang:en", "feed:bbc.co.uk", "domain:bbc.co.uk", "Armenia -lang:en"):
        assert (match_query(query, doc) is not None) is query.startswith("Armenia")


def test_phrase_does_not_span_title_and_body() -> None:
    """The last title word and the first body word are not adjacent."""
    doc = MatchDocument(title="Talks in Yerevan", text="Ceasefire holds")
    assert match_query('"Yerevan ceasefire"', doc) is None
    assert match_query("Yerevan ceasefire", doc) is not None


def test_token_classes_are_disjoint() -> None:
    """`TOKENS_RE` uses possessive quantifiers, which find `TOKEN_RE`'s tokens only while the
    letter, mark and inner-punctuation classes share no character."""
    import re

    from ingest.match.text import _INNER, _L, _M, TOKEN_RE, TOKENS_RE

    classes = re.compile(f"(?:{_L})|(?:{_M})|[{_INNER}]")
    letters, marks, inner = re.compile(_L), re.compile(_M), re.compile(f"[{_INNER}]")
    for cp in range(0x110000):
        char = chr(cp)
        if classes.fullmatch(char):
            assert sum(bool(p.fullmatch(char)) for p in (letters, marks, inner)) == 1, hex(cp)
    text = "Ça-va l’état d\u0301e ÉTATS-Unis co\u200dop 北京 ไทย x-'y --a"
    assert TOKENS_RE.findall(text) == [c or w for c, w in TOKEN_RE.findall(text)]
