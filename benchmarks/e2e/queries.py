"""Subscription queries for the farm: a few that match corpus items, most that rarely do."""

from __future__ import annotations

import random
import re

from benchmarks.farm import Doc


def _words(text: str) -> list[str]:
    return text.split()


PLACES = _words(
    "Germany France Britain Italy Spain Poland Ukraine Russia China Japan India Brazil Mexico "
    "Canada Australia Turkey Iran Israel Egypt Nigeria Kenya Korea Taiwan Vietnam Indonesia Argentina "
    "Sweden Norway Greece Portugal London Paris Berlin Washington Beijing Tokyo Moscow"
)
TOPICS = _words(
    "election inflation ceasefire tariff sanctions protest strike earthquake flood wildfire "
    "vaccine pandemic merger bankruptcy lawsuit budget unemployment climate emissions refugees drought "
    "hurricane cyberattack referendum summit treaty recession interest pension housing"
)
COMMON = set(
    _words("""This That There These Those Then When What Where Which While With Without From Into
Over After Before About Above Below Under Their They Them There Here Have Has Had Were Will Would Could
Should Some Many Most Much More Other Such Only Also Even Just Like Because Since Until Although Though
However Still Every Each Both Either Neither Today Yesterday Tomorrow Monday Tuesday Wednesday Thursday
Friday Saturday Sunday January February March April June July August September October November December
Read Copyright Site Photo Image Follow Share""")
)


def make_queries(docs: list[Doc], count: int, seed: int = 11) -> list[str]:
    """`count` subscription queries, deterministic: a tenth from the corpus (names that co-occur in an
    article, phrases, headline words; these match some farm items), the rest places x topics
    (these rarely do). On the article-extraction corpus ~45 % of items alert someone, 0.8 alerts per item."""
    rng = random.Random(seed)
    names: list[list[str]] = []
    phrases: list[str] = []
    headline: list[str] = []
    for doc in docs:
        text = " ".join(doc.paragraphs)
        found = [w for w in re.findall(r"\b[A-Z][a-z]{3,}\b", text) if w not in COMMON]
        if len(set(found)) >= 2:
            names.append(sorted(set(found)))
        phrases += [
            f"{a} {b}"
            for a, b in re.findall(r"\b([A-Z][a-z]{2,}) ([A-Z][a-z]{2,})\b", text)
            if a not in COMMON and b not in COMMON
        ]
        headline += [w for w in re.findall(r"\b[A-Za-z]{6,}\b", doc.title) if w.capitalize() not in COMMON]
    queries: list[str] = []
    while len(queries) < count:
        kind = rng.random()
        if kind < 0.04 and names:
            pair = rng.sample(rng.choice(names), 2)
            queries.append(f"{pair[0]} AND {pair[1]}")
        elif kind < 0.07 and phrases:
            queries.append(f'"{rng.choice(phrases)}"')
        elif kind < 0.1 and len(headline) > 1:
            queries.append(f"title:{rng.choice(headline).lower()} {rng.choice(headline).lower()}")
        elif kind < 0.6:
            a, b = rng.sample(PLACES, 2)
            queries.append(f"({a} OR {b}) AND {rng.choice(TOPICS)}")
        else:
            queries.append(f'"{rng.choice(PLACES)} {rng.choice(TOPICS)}"~8 -sport')
    return queries
