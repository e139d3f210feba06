"""Cleaning rules: article text they remove (lost) against scraping residue they leave (residue).

Usage: .venv/bin/python benchmarks/clean_eval.py --extraction DIR --fundus DIR [--show N]
  --extraction: article-extraction-benchmark (html/*.html.gz, ground-truth.json)
  --fundus: fundus parser test data (<country>/<Publisher>_<date>.html.gz, <Publisher>.json)

Lost: the ground-truth body paragraphs are run through the rules; every paragraph a rule drops is
counted (with the rule's name). Some are residue the annotators kept (copyright lines, wire
credits, "Disclaimer:" notes); they are listed so a reader can judge.
Residue: the page is extracted (ingest.clean.extract) and each extracted paragraph whose tokens do not
occur in the ground truth counts as residue, before and after the rules.
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ingest.clean import clean_paragraphs, load_rules
from ingest.clean.extract import extract_page
from ingest.clean.html import normalize_space

TOKENS = re.compile(r"\w+")
RULES = load_rules()


@dataclass
class Tally:
    """Counts for one data set."""

    pages: int = 0
    truth_paragraphs: int = 0
    truth_words: int = 0
    lost_paragraphs: int = 0
    lost_words: int = 0
    lost_by_rule: Counter[str] = field(default_factory=Counter)
    lost_examples: list[str] = field(default_factory=list)
    residue_before: int = 0
    residue_before_words: int = 0
    residue_after: int = 0
    residue_after_words: int = 0
    residue_examples: list[str] = field(default_factory=list)


def _tokens(text: str) -> str:
    return " ".join(TOKENS.findall(text))


def tally_page(tally: Tally, url: str, html: str, truth: list[str]) -> None:
    host = urlsplit(url).hostname if url else None
    tally.pages += 1
    truth = [p for p in (normalize_space(x) for x in truth) if p]
    tally.truth_paragraphs += len(truth)
    tally.truth_words += sum(len(p.split()) for p in truth)
    _, dropped = clean_paragraphs(truth, RULES, host)
    for para in dropped:
        tally.lost_paragraphs += 1
        tally.lost_words += len(para.split())
        tally.lost_by_rule[RULES.dropping_rule(RULES.strip_fragments(para, host), host) or "strip"] += 1
        tally.lost_examples.append(para[:120])
    whole = _tokens(" ".join(truth))
    extracted = extract_page(html, url or None).paragraphs
    kept, _ = clean_paragraphs(extracted, RULES, host)
    for before, bucket in ((True, extracted), (False, kept)):
        for para in bucket:
            toks = _tokens(para)
            if toks and toks not in whole:
                words = len(para.split())
                if before:
                    tally.residue_before += 1
                    tally.residue_before_words += words
                else:
                    tally.residue_after += 1
                    tally.residue_after_words += words
                    tally.residue_examples.append(para[:120])


def extraction_benchmark(data: Path) -> Tally:
    tally = Tally()
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    for key in sorted(truth):
        with gzip.open(data / "html" / f"{key}.html.gz", "rt", encoding="utf8") as fh:
            html = fh.read()
        body = truth[key].get("articleBody") or ""
        tally_page(tally, truth[key].get("url") or "", html, body.split("\n"))
    return tally


def _fundus_paragraphs(body: dict[str, object]) -> list[str]:
    paras = list(body.get("summary") or [])  # type: ignore[call-overload]
    for section in body.get("sections") or []:  # type: ignore[attr-defined]
        paras += list(section.get("headline") or []) + list(section.get("paragraphs") or [])
    return [str(p) for p in paras]


def fundus(data: Path) -> Tally:
    tally = Tally()
    for spec in sorted(data.glob("*/*.json")):
        entries = list(json.loads(spec.read_text(encoding="utf-8")).values())
        files = sorted(spec.parent.glob(f"{spec.stem}_*.html.gz"))
        for entry, path in zip(entries, files, strict=True):
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
                html = fh.read()
            match = re.search(r'<meta[^>]+property="og:url"[^>]+content="([^"]+)"', html)
            url = match.group(1) if match else ""
            tally_page(tally, url, html, _fundus_paragraphs(entry.get("body") or {}))
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--extraction", type=Path, required=True, help="article-extraction-benchmark directory"
    )
    parser.add_argument("--fundus", type=Path, required=True, help="fundus parser test-data directory")
    parser.add_argument("--show", type=int, default=0, help="list N lost paragraphs and N residue paragraphs")
    args = parser.parse_args(argv)
    results = {
        "article-extraction-benchmark": extraction_benchmark(args.extraction),
        "fundus": fundus(args.fundus),
    }
    print(
        "| data | pages | truth paragraphs | dropped by rules (lost) | words lost | "
        "residue paragraphs before rules | after rules | residue words after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, t in results.items():
        print(
            f"| {name} | {t.pages} | {t.truth_paragraphs} | {t.lost_paragraphs} "
            f"({t.lost_paragraphs / max(1, t.truth_paragraphs):.2%}) | {t.lost_words} "
            f"({t.lost_words / max(1, t.truth_words):.3%}) | "
            f"{t.residue_before} ({t.residue_before_words} w) "
            f"| {t.residue_after} ({t.residue_after_words} w) | "
            f"{1 - t.residue_after_words / max(1, t.residue_before_words):.0%} removed |"
        )
    for name, t in results.items():
        print(f"\n{name}: lost paragraphs by rule: {dict(t.lost_by_rule.most_common())}")
        for example in t.lost_examples[: args.show]:
            print(f"  lost: {example}")
        for example in t.residue_examples[: args.show]:
            print(f"  residue: {example}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
