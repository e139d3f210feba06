"""Short texts in a feed of one language: the feed prior's gain on that language and its cost on others.

Usage: .venv/bin/python benchmarks/language_prior_eval.py --data DIR [--feed en] [--per-language N]
       [--skip N] [--kinds word-pairs,sentences]
  DIR holds <iso 639-1>/testdata/{sentences,word-pairs,single-words}.txt (lingua's test data).

Every text is taken as an entry of a feed whose language is `--feed`, declared and seen in 20
long entries (FeedLanguagePrior belief 0.95), as the pipeline builds it. "before": the service's
answer with the declared language as the hint (`LanguageDetector.detect`, what the pipeline did
until now); "after": that answer settled by the prior (`ingest.language.prior.with_prior`).
Reported per kind: accuracy on the feed's own language (the gain: headlines of an English feed
coming out English) and mean accuracy over the other languages (the cost: a foreign headline
taken for the feed's language), `und` counted wrong. `--feeds DATA_DIR`: also every real feed of
realworld.py's sets, each with the prior its own long entries and declared language make; short
entries whose language the prior changes are counted and listed. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.realworld import feed_files
from ingest.errors import ParseError
from ingest.language.detect import LanguageDetector, normalize_hint
from ingest.language.prior import LONG_TEXT_CHARS, FeedLanguagePrior, with_prior
from ingest.log import configure_logging
from ingest.models import FetchResult
from ingest.parse import parse_feed
from ingest.services.prepare import Preparer, ProcessedDocument
from ingest.settings import Settings


def texts(data: Path, kind: str, skip: int, count: int) -> dict[str, list[str]]:
    found = {}
    for folder in sorted(data.iterdir()):
        path = folder / "testdata" / f"{kind}.txt"
        code = normalize_hint(folder.name)
        if path.exists() and code:
            lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            found[code] = lines[skip : skip + count]
    return found


def real_feeds(data: Path, show: int = 30) -> None:
    """Each real feed's entries cleaned and tagged as the pipeline does; the prior made of the
    feed's declared language and its long entries' languages; short entries before -> after."""
    preparer = Preparer(LanguageDetector())
    short = changed = feeds = 0
    examples = []
    for path in feed_files(data):
        url = f"https://feeds.example.org/{path.name}"
        result = FetchResult(url=url, status=200, content=path.read_bytes(), headers={})
        try:
            entries = parse_feed(result, feed_id=1, feed_url=result.url).entries
        except ParseError:
            continue
        docs = [(entry, preparer.prepare(entry)) for entry in entries]
        longs = [d.language.code for _, d in docs if _long(d)]
        feeds += 1
        for entry, doc in docs:
            if _long(doc):
                continue
            short += 1
            prior = FeedLanguagePrior.of(normalize_hint(entry.language_hint), longs)
            after = preparer.settle(doc, prior).language
            if after.code != doc.language.code:
                changed += 1
                examples.append(f"{path.name}: {doc.clean.title[:60]!r} {doc.language.code} -> {after.code}")
    print(f"real feeds: {feeds} parsed, {short} short entries, {changed} changed by the prior")
    for line in examples[:show]:
        print(f"  {line}")


def _long(doc: ProcessedDocument) -> bool:
    return len(doc.clean.title) + len(doc.clean.text) >= LONG_TEXT_CHARS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--feed", default="en", help="the feed's language")
    parser.add_argument("--per-language", type=int, default=30)
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--kinds", default="word-pairs,sentences")
    parser.add_argument("--no-load-cap", action="store_true", help="lift the cap on model loads per minute")
    parser.add_argument("--feeds", type=Path, help="also: real feeds (the realworld.py DATA_DIR)")
    args = parser.parse_args()
    configure_logging(Settings.from_env({"INGEST_LOG_LEVEL": "error", "INGEST_LOG_FORMAT": "console"}))
    if args.feeds:
        real_feeds(args.feeds)
    detector = LanguageDetector(loads_per_minute=None) if args.no_load_cap else LanguageDetector()
    prior = FeedLanguagePrior.of(args.feed, {args.feed: 20})
    cap = "no cap on model loads" if args.no_load_cap else "the service's cap on model loads"
    belief = prior.belief()[1]
    print(f"feed language {args.feed}, prior belief {belief:.2f}; {args.per_language} per language; {cap}")
    print("| kind | texts | feed's language: before -> after | others, mean: before -> after | changed |")
    print("|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        by_language = texts(args.data, kind, args.skip, args.per_language)
        own = [0, 0]
        others: list[tuple[float, float]] = []
        changed = 0
        for code, items in by_language.items():
            right = [0, 0]
            for text in items:
                before = detector.detect(text, hint=args.feed)
                after = with_prior(detector, text, before, prior)
                right[0] += before.code == code
                right[1] += after.code == code
                changed += after.code != before.code
            if code == args.feed:
                own = right
            else:
                others.append((right[0] / max(1, len(items)), right[1] / max(1, len(items))))
        n = len(by_language.get(args.feed, [])) or 1
        mean_before = sum(b for b, _ in others) / max(1, len(others))
        mean_after = sum(a for _, a in others) / max(1, len(others))
        total = sum(map(len, by_language.values()))
        print(
            f"| {kind} | {total} | {own[0] / n:.3f} -> {own[1] / n:.3f} | "
            f"{mean_before:.3f} -> {mean_after:.3f} ({len(others)} languages) | {changed} |"
        )


if __name__ == "__main__":
    main()
