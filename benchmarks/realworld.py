"""Real-world input: public feeds and pages nobody here wrote, through parse + clean as the service runs them.

Usage: .venv/bin/python benchmarks/realworld.py DATA_DIR [--show N]
  DATA_DIR holds feedjira-sample-feeds/, feeds-feed-rs/ (feeds), fundus-parser-testdata/,
  readability-test-pages/ and article-extraction-benchmark/ (pages); missing sets are skipped.

Feeds: every entry the document holds (counted with lxml, apart from the parser) against the
entries parse_feed returns; each entry cleaned as the worker does (`Preparer.clean`'s call).
 - titles: the stored title against the title feedparser alone reads from the same bytes, its
   entities decoded until none are left and its tags removed (lxml.html); target >= 99 %.
 - empty bodies: entries whose content, description or summary shows text (per feedparser alone)
   stored with empty text; target 0.
Pages: each whole page through `clean_document("", html, url=...)`, the `ingest process --html`
path (main-text extraction, then the rules).
 - titles: exact match with the ground truth, and pages whose stored title still carries text
   around the true title (a site suffix or section left); target >= 95 % without, fundus.
 - article words the rules removed: ground-truth paragraphs run through the rules (as
   clean_eval.py), and extracted paragraphs the rules dropped whose words are in the ground
   truth; target < 0.5 %.
 - residue: stored paragraphs a separate detector list (benchmarks/residue_detectors.py) calls
   residue, before the rules (extraction only) and after; and paragraphs absent from the truth.
Stories (benchmarks/stories_eval.py, over the extraction benchmark and fundus bodies; needs Redis,
`--redis-url`, skipped with a message without one): briefs joining their body, releases sharing
a site's boilerplate, templated texts with other names and numbers.
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import feedparser
import lxml.etree
import lxml.html
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.realworld_pages import (
    PageTally,
    extraction_pages,
    fundus_pages,
    readability_pages,
    tally_page,
)
from benchmarks.residue_detectors import ResidueTally, residue_kind
from benchmarks.stories_eval import report as stories_report
from ingest.clean import clean_document, load_rules
from ingest.errors import ParseError
from ingest.log import configure_logging
from ingest.models import FetchResult
from ingest.parse import parse_feed
from ingest.settings import Settings

RULES = load_rules()
TOKENS = re.compile(r"\w+")


# -- feeds ---------------------------------------------------------------------------------


@dataclass
class FeedTally:
    feeds: int = 0
    failed: list[str] = field(default_factory=list)
    not_feeds: int = 0  # documents that hold no feed (entry fragments, HTML, other XML)
    present: int = 0
    stored: int = 0
    titles: int = 0
    titles_equal: int = 0
    titles_shared_suffix: int = 0  # equal once an ending naming the site (shared suffix, feed title) is cut
    title_misses: list[str] = field(default_factory=list)
    with_body: int = 0
    empty_text: list[str] = field(default_factory=list)
    residue: ResidueTally = field(default_factory=ResidueTally)


def feed_files(data: Path) -> Iterator[Path]:
    for folder in ("feedjira-sample-feeds", "feeds-feed-rs"):
        root = data / folder
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.suffix in (".xml", ".json") and not path.name.endswith(".serde.json"):
                yield path


FEED_ELEMENTS = ("rss", "feed", "RDF", "rdf", "channel")


def present_entries(raw: bytes) -> int | None:
    """Entries in the document, counted without the service's parser; None when it is no feed."""
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        items = json.loads(raw.decode("utf-8-sig")).get("items")
        return len(items) if isinstance(items, list) else 0
    options = {"resolve_entities": False, "no_network": True}
    try:
        root = lxml.etree.fromstring(raw.lstrip(), parser=lxml.etree.XMLParser(**options))
        well_formed = True
    except lxml.etree.XMLSyntaxError:
        root = lxml.etree.fromstring(raw, parser=lxml.etree.XMLParser(recover=True, **options))
        well_formed = False
    if root is None:
        return None
    names = [_local(el.tag) for el in root.iter() if isinstance(el.tag, str)]
    if not (set(names) & set(FEED_ELEMENTS) or (well_formed and names[0] in ("entry", "item"))):
        return None  # a fragment, an HTML page, another kind of XML
    return sum(1 for name in names if name in ("item", "entry"))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]


def reference_text(value: str) -> str:
    """Entities decoded until none are left, tags (and script/style content) removed, spaces collapsed."""
    for _ in range(5):
        decoded = html.unescape(value)
        if decoded == value:
            break
        value = decoded
    if re.search(r"<[a-zA-Z/!]", value):
        try:
            fragment = lxml.html.fragment_fromstring(value, create_parent="div")
            for bad in fragment.xpath(".//script|.//style"):
                bad.drop_tree()
            value = fragment.text_content()
        except (lxml.etree.ParserError, ValueError):
            pass
    return " ".join(value.split())


def reference_entries(raw: bytes) -> list[tuple[str, bool]]:
    """(title, has a body) per entry, as feedparser alone (or the JSON itself) reads the document."""
    if raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
        items = json.loads(raw.decode("utf-8-sig")).get("items") or []
        return [
            (
                reference_text(str(i.get("title") or "")),
                any(_shows_text(str(i.get(k) or "")) for k in ("content_html", "content_text", "summary")),
            )
            for i in items
            if isinstance(i, dict)
        ]
    parsed = feedparser.parse(raw, sanitize_html=False, resolve_relative_uris=False)
    out = []
    for entry in parsed.entries:
        bodies = [c.get("value") or "" for c in entry.get("content") or []] + [entry.get("summary") or ""]
        out.append((reference_text(entry.get("title") or ""), any(_shows_text(b) for b in bodies)))
    return out


def _shows_text(body: str) -> bool:
    """A body with text a reader would want: not empty, and not only residue (a bare "Comments" link)."""
    text = reference_text(body)
    return bool(text) and residue_kind(text) is None


def shared_suffix(titles: list[str]) -> str | None:
    """An ending like " | Site" (after a bar or a spaced dash) that at least half the titles (and 3) share."""
    endings: Counter[str] = Counter()
    for title in titles:
        match = re.search(r"\s(?:\||-|–|—)\s[^|–—]+$", title)
        if match:
            endings[match.group(0)] += 1
    if not endings:
        return None
    ending, count = endings.most_common(1)[0]
    return ending if count >= max(3, len(titles) / 2) else None


def tally_feed(tally: FeedTally, path: Path) -> None:
    raw = path.read_bytes()
    tally.feeds += 1
    present = present_entries(raw)
    tally.present += present or 0
    tally.not_feeds += present is None
    result = FetchResult(url=f"https://feeds.example.org/{path.name}", status=200, content=raw, headers={})
    try:
        feed = parse_feed(result, feed_id=1, feed_url=result.url)
    except ParseError as exc:
        tally.failed.append(f"{path.name}: {exc}")
        return
    tally.stored += len(feed.entries)
    references = reference_entries(raw)
    shared = shared_suffix([title for title, _ in references])
    own = [f" {sep} {part}" for part in re.split(r"\s[|–—-]\s", feed.title or "") for sep in "|-–—" if part]
    for index, entry in enumerate(feed.entries):
        doc = clean_document(
            entry.title,
            entry.content,
            is_html=entry.is_html,
            url=entry.url,
            feed_title=entry.feed_title,
            summary=entry.summary,
            rules=RULES,
            learnt_suffix=entry.title_suffix,
        )
        tally.residue.add(doc.text.split("\n\n") if doc.text else [])
        if index >= len(references):
            continue
        title, has_body = references[index]
        tally.titles += 1
        if doc.title == title:
            tally.titles_equal += 1
        elif any(
            title.endswith(end) and doc.title == title[: -len(end)].rstrip() for end in [*own, shared or "\0"]
        ):
            tally.titles_shared_suffix += 1  # the ending cut is the feed's shared suffix or its own name
        else:
            tally.title_misses.append(f"{path.name}: {doc.title!r} != {title!r}")
        if has_body:
            tally.with_body += 1
            if not doc.text:
                tally.empty_text.append(f"{path.name}#{index}: {entry.title[:60]!r}")


# -- report --------------------------------------------------------------------------------


def _pct(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def report_feeds(tally: FeedTally, show: int) -> None:
    print(f"\n## Feeds ({tally.feeds} documents)\n")
    ok = tally.titles_equal + tally.titles_shared_suffix
    print(
        "| entries present | stored | titles equal to source (+ with a site ending cut: the feed's shared "
        "suffix or its own title) "
        "| entries with a body stored empty | documents not parsed (of them no feed) |"
    )
    print("|---|---|---|---|---|")
    print(
        f"| {tally.present} | {tally.stored} | {ok}/{tally.titles} ({_pct(ok, tally.titles)}; "
        f"{tally.titles_shared_suffix} with a site ending cut) | {len(tally.empty_text)} of "
        f"{tally.with_body} | {len(tally.failed)} ({tally.not_feeds}) |"
    )
    print(
        f"\nresidue paragraphs in stored feed text: {tally.residue.found} of {tally.residue.paragraphs} "
        f"{dict(tally.residue.kinds.most_common())}"
    )
    for line in [
        *tally.failed,
        *tally.title_misses[:show],
        *tally.empty_text[:show],
        *tally.residue.examples[:show],
    ]:
        print(f"  {line}")


def report_pages(results: dict[str, PageTally], show: int) -> None:
    print("\n## Pages (`ingest process --html` path)\n")
    print(
        "| set | pages | stored with text | title exact | title with text around the truth | "
        "truth words dropped by rules (truth paragraphs) | truth words among removed paragraphs | "
        "residue (detectors) before rules -> stored | stored paragraphs not in truth |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, t in results.items():
        titles = f"{_pct(t.titles_exact, t.titles)}" if t.titles else "-"
        extra = (
            f"{len(t.titles_with_extra)} ({_pct(len(t.titles_with_extra), t.titles)})" if t.titles else "-"
        )
        print(
            f"| {name} | {t.pages} | {t.with_text} | {titles} | {extra} | {t.truth_lost_words} "
            f"({t.truth_lost_words / max(1, t.truth_words):.3%}) | {t.removed_truth_words} "
            f"({t.removed_truth_words / max(1, t.truth_words):.3%}) | {t.residue_before} -> "
            f"{t.residue.found} of {t.residue.paragraphs} | {t.not_in_truth} ({t.not_in_truth_words} w) |"
        )
    for name, t in results.items():
        print(f"\n{name}: residue by detector {dict(t.residue.kinds.most_common())}")
        for line in [*t.titles_with_extra[:show], *t.removed_examples[:show], *t.residue.examples[:show]]:
            print(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path, help="directory holding the public evaluation sets")
    parser.add_argument("--show", type=int, default=0, help="list N misses of each kind")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13", help="db for the story figures")
    parser.add_argument("--no-stories", action="store_true", help="skip the story grouping figures")
    args = parser.parse_args(argv)
    configure_logging(Settings.from_env({"INGEST_LOG_LEVEL": "error", "INGEST_LOG_FORMAT": "console"}))
    feeds = FeedTally()
    for path in feed_files(args.data):
        tally_feed(feeds, path)
    report_feeds(feeds, args.show)
    sets: dict[str, Any] = {
        "fundus": fundus_pages,
        "readability": readability_pages,
        "extraction-benchmark": extraction_pages,
    }
    results: dict[str, PageTally] = {}
    for name, pages in sets.items():
        try:
            tally = PageTally()
            for page in pages(args.data):
                tally_page(tally, page)
            results[name] = tally
        except FileNotFoundError:
            continue
    report_pages(results, args.show)
    if not args.no_stories:
        sets = [args.data / name for name in ("article-extraction-benchmark", "fundus-parser-testdata")]
        try:
            stories_report([p for p in sets if p.is_dir()], args.redis_url)
        except redis.ConnectionError as exc:
            print(f"story grouping skipped: no Redis at {args.redis_url} ({exc})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
