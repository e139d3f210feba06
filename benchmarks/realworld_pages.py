"""The page sets of benchmarks/realworld.py: loaders with their ground truth, and the per-page tally.

Each page goes through `clean_document("", html, url=...)`, the `ingest process --html` path.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html

from benchmarks.residue_detectors import ResidueTally, residue_kind
from ingest.clean import clean_document, clean_paragraphs, load_rules
from ingest.clean.extract import extract_page

RULES = load_rules()
TOKENS = re.compile(r"\w+")


@dataclass(frozen=True)
class Page:
    name: str
    url: str
    html: str
    title: str | None  # ground-truth title, when the set has one
    body: list[str]  # ground-truth paragraphs
    whole: str | None = None  # all ground-truth text, when the paragraphs miss some of it


@dataclass
class PageTally:
    pages: int = 0
    with_text: int = 0
    titles: int = 0
    titles_exact: int = 0
    titles_with_extra: list[str] = field(default_factory=list)
    truth_words: int = 0
    truth_lost_words: int = 0  # ground-truth paragraphs the rules drop
    removed_truth_words: int = 0  # extracted paragraphs the rules dropped that are ground truth
    removed_examples: list[str] = field(default_factory=list)
    residue_before: int = 0
    residue: ResidueTally = field(default_factory=ResidueTally)
    not_in_truth: int = 0
    not_in_truth_words: int = 0


def _gz(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _og_url(page: str) -> str:
    """The page's own address (og:url, else rel=canonical), as a feed entry would link it."""
    match = re.search(r'<meta[^>]+property="og:url"[^>]+content="(https?://[^"]+)"', page) or re.search(
        r'<link[^>]+rel="canonical"[^>]+href="(https?://[^"]+)"', page
    )
    return match.group(1) if match else ""


def fundus_pages(data: Path) -> Iterator[Page]:
    for spec in sorted((data / "fundus-parser-testdata").glob("*/*.json")):
        entries = list(json.loads(spec.read_text(encoding="utf-8")).values())
        files = sorted(spec.parent.glob(f"{spec.stem}_*.html.gz"))
        for entry, path in zip(entries, files, strict=True):
            body = entry.get("body") or {}
            paras = list(body.get("summary") or [])
            for section in body.get("sections") or []:
                paras += list(section.get("headline") or []) + list(section.get("paragraphs") or [])
            text = _gz(path)
            yield Page(f"{spec.parent.name}/{path.name}", _og_url(text), text, entry.get("title"), paras)


def readability_pages(data: Path) -> Iterator[Page]:
    for folder in sorted((data / "readability-test-pages").iterdir()):
        if not (folder / "source.html").exists():
            continue
        meta = json.loads((folder / "expected-metadata.json").read_text(encoding="utf-8"))
        expected = lxml.html.fromstring((folder / "expected.html").read_bytes())
        blocks = [" ".join(el.text_content().split()) for el in expected.iter("p", "li", "h2", "h3", "pre")]
        source = (folder / "source.html").read_text(encoding="utf-8", errors="replace")
        url = _og_url(source) or f"http://fakehost/{folder.name}/"
        whole = " ".join(expected.text_content().split())
        yield Page(
            f"readability/{folder.name}", url, source, meta.get("title"), [b for b in blocks if b], whole
        )


def extraction_pages(data: Path) -> Iterator[Page]:
    root = data / "article-extraction-benchmark"
    truth = json.loads((root / "ground-truth.json").read_text(encoding="utf-8"))
    for key in sorted(truth):
        body = (truth[key].get("articleBody") or "").split("\n")
        yield Page(
            f"extraction/{key[:12]}",
            truth[key].get("url") or "",
            _gz(root / "html" / f"{key}.html.gz"),
            None,
            body,
        )


def _tokens(text: str) -> str:
    return " ".join(TOKENS.findall(text))


def tally_page(tally: PageTally, page: Page) -> None:
    tally.pages += 1
    host = urlsplit(page.url).hostname if page.url else None
    truth = [p for p in (" ".join(x.split()) for x in page.body) if p]
    whole = _tokens(page.whole or " ".join(truth))
    tally.truth_words += sum(len(p.split()) for p in truth)
    _, dropped = clean_paragraphs(truth, RULES, host)
    tally.truth_lost_words += sum(len(p.split()) for p in dropped)
    doc = clean_document("", page.html, is_html=True, url=page.url or None, rules=RULES)
    stored = doc.text.split("\n\n") if doc.text else []
    tally.with_text += bool(stored)
    extracted = extract_page(page.html, page.url or None).paragraphs
    tally.residue_before += sum(1 for p in extracted if residue_kind(p))
    for para in doc.removed:
        toks = _tokens(para)
        if whole and toks and toks in whole and len(toks.split()) >= 3:
            tally.removed_truth_words += len(para.split())
            tally.removed_examples.append(f"{page.name}: {para[:100]}")
    tally.residue.add(stored)
    for para in stored:
        toks = _tokens(para)
        if whole and toks and toks not in whole:
            tally.not_in_truth += 1
            tally.not_in_truth_words += len(para.split())
    if page.title:
        truth_title = " ".join(page.title.split())
        tally.titles += 1
        tally.titles_exact += doc.title == truth_title
        if doc.title != truth_title and truth_title in doc.title:
            tally.titles_with_extra.append(f"{page.name}: {doc.title!r}")
