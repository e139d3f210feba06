"""Story grouping on real article bodies: briefs, site boilerplate and templated texts, through the
Redis index as the pipeline runs it (sentence counts of each site, fingerprint, the script).

Usage: .venv/bin/python benchmarks/stories_eval.py --data DIR [--data DIR2 ...] [--redis-url URL]

DIR is an evaluation set as near_duplicates.py reads it (`ground-truth.json`, or the fundus
layout). Three kinds of pairs, each article indexed in order under its own URL:
 - briefs: every body of 250 words or more, then its lead paragraphs (at least 50 words, at most
   40 % of the body) on another site; half of them brief first. Recall: briefs in their body's
   story; precision: of the briefs that joined a story, those in the right one.
 - boilerplate: "press releases" (the first 120 words of a body) on sites of 6, each site
   appending its own ~150-word "About / forward-looking statements / media contact" block to
   all of its releases; every pair is two different articles. Pairs grouped = false positives;
   reported for all pairs and for pairs past the site's second release (the sentence counts
   need two other stories of the site, INGEST_DEDUP_BOILERPLATE_DOCS); and with each site's
   releases arriving in one batch, as a feed's first batch does.
 - templated: each body's first 250 words, then the same text with every number and every
   capitalised name swapped for others (a templated report about another company), on another
   site: grouped = false positive. Control: the same text with the names swapped but the
   numbers kept, which stays one story only if numbers decide.
Uses a Redis db (default 13) claimed with the test suite's marker and flushed before and after.
Runs on trees without the sentence counts too (the figures "before"). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup import MARKER, open_db
from near_duplicates import load_bodies, paragraphs

from ingest.dedup.fingerprint import DedupItem, fingerprint
from ingest.dedup.index import Deduplicator
from ingest.log import configure_logging
from ingest.settings import Settings

try:  # trees before the site boilerplate counts
    from ingest.dedup.features import sentence_keys, site
except ImportError:  # pragma: no cover
    sentence_keys = site = None  # type: ignore[assignment]

BOILERPLATE = (
    "About {name}: {name} is a {adj} provider of software, services and equipment for {market}, with "
    "customers in more than {n} countries and offices across Europe, North America and Asia. The company "
    "was founded by engineers who wanted to make {market} simpler, safer and more efficient, and it "
    "employs specialists in research, manufacturing, sales and support.\n"
    "Forward-looking statements: This press release contains forward-looking statements that involve risks "
    "and uncertainties, including statements regarding future products, demand, partnerships and financial "
    "results. Actual results may differ materially from those expressed or implied in such statements "
    "because of changes in economic conditions, competition, supply chains and regulation. {name} "
    "undertakes no obligation to update any forward-looking statement after the date of this release.\n"
    "Media contact: the press office of {name} is available on weekdays for interviews, images and "
    "background information about the company, its management and its products."
)
ADJECTIVES = ["leading", "global", "fast-growing", "trusted", "independent", "specialist"]
MARKETS = ["logistics", "healthcare", "agriculture", "retail", "energy", "banking", "education"]
NAMES = [
    "Aldridge",
    "Benedetti",
    "Castellano",
    "Dubois",
    "Eriksen",
    "Fairbanks",
    "Gallagher",
    "Hoffmann",
    "Ivanova",
    "Jablonski",
    "Kowalczyk",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okonkwo",
    "Pereira",
    "Quintero",
    "Rasmussen",
    "Schneider",
    "Tanaka",
    "Underwood",
    "Vasquez",
]
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_TOKEN = re.compile(r"\S+")
_WORDS = re.compile(r"[^\W\d_]+")


@dataclass
class Index:
    """One Redis index, fed one article at a time as the pipeline does."""

    client: redis.Redis
    prefix: str
    dedup: Deduplicator = field(init=False)
    count: int = 0

    def __post_init__(self) -> None:
        self.dedup = Deduplicator(self.client, prefix=self.prefix)

    def add(self, text: str, host: str) -> tuple[str, str, str]:
        """(article id, kind, story id) of one article of `host`."""
        return self.add_batch([text], host)[0]

    def add_batch(self, texts: list[str], host: str) -> list[tuple[str, str, str]]:
        """(article id, kind, story id) of articles of `host` arriving in one batch."""
        ids = [f"d{self.count + i + 1}" for i in range(len(texts))]
        urls = [f"https://{host}/a/{self.count + i + 1}" for i in range(len(texts))]
        self.count += len(texts)
        if sentence_keys is None or site is None:
            items = [
                DedupItem(aid, fingerprint(t, url), None)
                for aid, t, url in zip(ids, texts, urls, strict=True)
            ]
            return [(aid, r.kind, r.story_id) for aid, r in zip(ids, self.dedup.assign(items), strict=True)]
        name, keys = site(urls[0]), [sentence_keys(t) for t in texts]
        frequent = self.dedup.boilerplate({name: Counter(k for ks in keys for k in ks)}).get(
            name, frozenset()
        )
        items = [
            DedupItem(aid, fingerprint(t, url, frequent), None)
            for aid, t, url in zip(ids, texts, urls, strict=True)
        ]
        results = self.dedup.assign(items)
        self.dedup.count_sentences(
            [(name, ks) for ks, r in zip(keys, results, strict=True) if r.kind != "exact"]
        )
        return [(aid, r.kind, r.story_id) for aid, r in zip(ids, results, strict=True)]


def words(text: str) -> int:
    return len(text.split())


def lead(body: str) -> str | None:
    """The body's first paragraphs: at least 50 words, at most 40 % of the body."""
    kept: list[str] = []
    for para in paragraphs(body):
        kept.append(para)
        if words(" ".join(kept)) >= 50:
            break
    brief = "\n\n".join(kept)
    return brief if 50 <= words(brief) <= 0.4 * words(body) else None


def briefs(index: Index, bodies: list[str]) -> tuple[int, int, int]:
    """(briefs, joined the right story, joined any story)."""
    total = right = joined = 0
    for i, body in enumerate(bodies):
        brief = lead(body) if words(body) >= 250 else None
        if brief is None:
            continue
        total += 1
        if i % 2:
            b_id, _, _ = index.add(brief, "briefs.example")
            _, kind, story = index.add(body, "wire.example")
            right += kind == "near" and story == b_id
            joined += kind == "near"
        else:
            _, _, story = index.add(body, "wire.example")
            _, kind, b_story = index.add(brief, "briefs.example")
            right += kind == "near" and b_story == story
            joined += kind == "near"
    return total, right, joined


def boilerplate(
    index: Index, bodies: list[str], rng: random.Random, *, batch: bool = False
) -> tuple[int, int, int, int]:
    """(pairs, pairs grouped, pairs past each site's second release, of those grouped); with
    `batch`, each site's releases arrive in one batch (a feed's first)."""
    pairs = grouped = late_pairs = late_grouped = 0
    for n, start in enumerate(range(0, len(bodies) - 5, 6)):
        name = f"Company{n} {rng.choice(['Systems', 'Group', 'Labs', 'Holdings'])}"
        block = BOILERPLATE.format(
            name=name, adj=rng.choice(ADJECTIVES), market=rng.choice(MARKETS), n=20 + n
        )
        releases = [" ".join(body.split()[:120]) + f"\n\n{block}" for body in bodies[start : start + 6]]
        host = f"site{n}{'b' if batch else ''}.example"
        if batch:
            stories = [story for _, _, story in index.add_batch(releases, host)]
        else:
            stories = [index.add(release, host)[2] for release in releases]
        for i in range(6):
            for j in range(i + 1, 6):
                same = stories[i] == stories[j]
                pairs, grouped = pairs + 1, grouped + same
                if i >= 2:
                    late_pairs, late_grouped = late_pairs + 1, late_grouped + same
    return pairs, grouped, late_pairs, late_grouped


def swapped(text: str, rng: random.Random, numbers: bool) -> str:
    """The text with its names (capitalised words, but for a sentence's first word when it is
    also written lower-case in the text) and, with `numbers`, its numbers swapped for others,
    consistently within the text."""
    common = {w for w in _WORDS.findall(text) if w.islower()}
    names: dict[str, str] = {}

    def name(match: re.Match[str]) -> str:
        word = match.group()
        if not word[0].isupper() or word.lower() in common:
            return word
        return names.setdefault(word, rng.choice(NAMES))

    out = []
    for token in _TOKEN.findall(text):
        if numbers:
            token = _NUMBER.sub(lambda m: str(int(re.sub(r"\D", "", m.group()) or 0) * 7 % 997 + 3), token)
        out.append(_WORDS.sub(name, token))
    return " ".join(out)


def templated(index: Index, bodies: list[str], rng: random.Random) -> tuple[int, int, int, int]:
    """(pairs, grouped with names and numbers swapped, pairs with numbers, of those grouped with
    the names swapped only)."""
    pairs = grouped = with_numbers = names_only = 0
    for body in bodies:
        text = " ".join(body.split()[:250])
        if words(text) < 120:
            continue
        _, _, story = index.add(text, "reports.example")
        _, _, other = index.add(swapped(text, rng, numbers=True), "templates.example")
        pairs, grouped = pairs + 1, grouped + (other == story)
        if len(set(_NUMBER.findall(text))) >= 3:
            _, _, renamed = index.add(swapped(text, rng, numbers=False), "renamed.example")
            with_numbers, names_only = with_numbers + 1, names_only + (renamed == story)
    return pairs, grouped, with_numbers, names_only


def report(data: list[Path], redis_url: str) -> None:
    """Print the story grouping table (realworld.py calls this too)."""
    bodies = load_bodies(data)
    client = open_db(redis_url)
    rng = random.Random(11)
    try:
        total, right, joined = briefs(Index(client, "stories:briefs:"), bodies)
        pairs, grouped, late_pairs, late_grouped = boilerplate(Index(client, "stories:press:"), bodies, rng)
        b_pairs, b_grouped, _, _ = boilerplate(Index(client, "stories:batch:"), bodies, rng, batch=True)
        t_pairs, t_grouped, n_pairs, n_grouped = templated(Index(client, "stories:templated:"), bodies, rng)
    finally:
        client.flushdb()
        client.delete(MARKER)
    print(f"story grouping over {len(bodies)} bodies ({', '.join(p.name for p in data)})")
    rows = [
        ("brief with its body", total, f"recall {_share(right, total)}, precision {_share(right, joined)}"),
        (
            "two releases of a site sharing its boilerplate",
            pairs,
            f"grouped {_share(grouped, pairs)} ({grouped}); past the site's second release "
            f"{_share(late_grouped, late_pairs)} ({late_grouped}/{late_pairs})",
        ),
        (
            "same, each site's 6 releases in one batch",
            b_pairs,
            f"grouped {_share(b_grouped, b_pairs)} ({b_grouped})",
        ),
        (
            "templated: names and numbers swapped",
            t_pairs,
            f"grouped {_share(t_grouped, t_pairs)} ({t_grouped})",
        ),
        (
            "control: names swapped, numbers kept",
            n_pairs,
            f"grouped {_share(n_grouped, n_pairs)} ({n_grouped})",
        ),
    ]
    print("| pairs | n | figure |\n|---|---|---|")
    for name, n, figure in rows:
        print(f"| {name} | {n} | {figure} |")


def _share(part: int, whole: int) -> str:
    return f"{part / max(1, whole):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    configure_logging(Settings.from_env({"INGEST_LOG_LEVEL": "error", "INGEST_LOG_FORMAT": "console"}))
    report(args.data, args.redis_url)


if __name__ == "__main__":
    main()
