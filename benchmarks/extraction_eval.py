"""Main-text extraction quality on the article-extraction-benchmark, with its own metric.

Usage: .venv/bin/python benchmarks/extraction_eval.py --data DIR [--baseline] [--limit N]
  DIR holds html/<id>.html.gz and ground-truth.json ({id: {url, articleBody}}).

The metric replicates the benchmark's evaluate.py: tokens are `\\w+` matches (case kept),
shingles are 4-token tuples counted with multiplicity, tp/fp/fn are normalised per page,
precision and recall are means over pages, F1 is their harmonic mean, and the confidence
interval is 1.96 x the standard deviation over bootstrap resamples of the pages.
`--baseline` also scores plain `trafilatura.extract(html, include_comments=False)`
(what the benchmark ran) and, when DIR/output/trafilatura.json exists, the benchmark's
stored trafilatura output, which checks the metric against the published figure.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ingest.clean import clean_paragraphs, load_rules
from ingest.clean.extract import extract_page

RULES = load_rules()

_TOKEN_RE = re.compile(r"\w+", re.UNICODE | re.MULTILINE | re.IGNORECASE | re.DOTALL)
TpFpFn = tuple[float, float, float]


def shingles(text: str | None, n: int = 4) -> Counter[tuple[str, ...]]:
    """4-token shingles with counts, exactly as the benchmark builds them."""
    tokens = _TOKEN_RE.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens[i : i + n])


def shingle_matching(true: str | None, pred: str | None) -> TpFpFn:
    """Normalised (tp, fp, fn) of one page."""
    t, p = shingles(true), shingles(pred)
    tp = float(sum((t & p).values()))
    fp = float(sum((p - t).values()))
    fn = float(sum((t - p).values()))
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fp == 0 else tp / (tp + fp)


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == fn == 0 else tp / (tp + fn)


def metrics(scores: list[TpFpFn]) -> dict[str, float]:
    """Mean precision and recall over pages, F1 of the means, and the share of exact pages."""
    precision = statistics.mean(_precision(*s) for s in scores if s[0] + s[1] > 0)
    recall = statistics.mean(_recall(*s) for s in scores if s[0] + s[2] > 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    exact = sum(1 for s in scores if s[1] == s[2] == 0) / len(scores)
    return {"f1": f1, "precision": precision, "recall": recall, "accuracy": exact}


def with_ci(scores: list[TpFpFn], rounds: int = 1000, seed: int = 0) -> dict[str, float]:
    """The metrics plus a bootstrap 95 % half-interval for each."""
    rng = random.Random(seed)
    result = metrics(scores)
    samples: dict[str, list[float]] = {k: [] for k in result}
    for _ in range(rounds):
        drawn = [scores[rng.randrange(len(scores))] for _ in scores]
        for key, value in metrics(drawn).items():
            samples[key].append(value)
    result.update({f"{k}_ci": 1.96 * statistics.stdev(v) for k, v in samples.items()})
    return result


def load_pages(data: Path, limit: int | None = None) -> list[tuple[str, str, str, str]]:
    """(id, url, html, ground-truth body) for every page, in id order."""
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key in sorted(truth)[:limit]:
        with gzip.open(data / "html" / f"{key}.html.gz", "rt", encoding="utf8") as fh:
            html = fh.read()
        pages.append((key, truth[key].get("url") or "", html, truth[key].get("articleBody") or ""))
    return pages


def run(
    pages: list[tuple[str, str, str, str]], extractor: Callable[[str, str], str]
) -> tuple[list[TpFpFn], float]:
    """Scores per page and CPU seconds per page."""
    scores = []
    start = time.process_time()
    for _, url, html, body in pages:
        scores.append(shingle_matching(body, extractor(html, url)))
    return scores, (time.process_time() - start) / len(pages)


def ours(html: str, url: str) -> str:
    """What the service stores: the extracted page through the cleaning rules."""
    kept, _ = clean_paragraphs(extract_page(html, url).paragraphs, RULES, urlsplit(url).hostname)
    return "\n\n".join(kept)


def trafilatura_default(html: str, url: str) -> str:
    import trafilatura

    return trafilatura.extract(html, include_comments=False) or ""


def _row(name: str, m: dict[str, float], cpu_ms: float | None) -> str:
    cpu = f"{cpu_ms:8.1f}" if cpu_ms is not None else "       -"
    return (
        f"| {name:<34} | {m['f1']:.3f} ± {m['f1_ci']:.3f} "
        f"| {m['precision']:.3f} ± {m['precision_ci']:.3f} "
        f"| {m['recall']:.3f} ± {m['recall_ci']:.3f} | {m['accuracy']:.3f} | {cpu} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="article-extraction-benchmark directory")
    parser.add_argument("--baseline", action="store_true", help="also score plain trafilatura")
    parser.add_argument("--limit", type=int, help="only the first N pages (by id)")
    parser.add_argument("--worst", type=int, default=0, help="list the N worst pages of ours")
    args = parser.parse_args(argv)
    pages = load_pages(args.data, args.limit)
    rows = []
    scores, cpu = run(pages, ours)
    rows.append(_row("ingest.clean.extract (ours)", with_ci(scores), cpu * 1000))
    if args.baseline:
        import trafilatura

        base, base_cpu = run(pages, trafilatura_default)
        rows.append(_row(f"trafilatura {trafilatura.__version__} default", with_ci(base), base_cpu * 1000))
        stored = args.data / "output" / "trafilatura.json"
        if stored.exists():
            out = json.loads(stored.read_text(encoding="utf-8"))
            out = out.get("output", out)
            ref = [
                shingle_matching(body, (out.get(key) or {}).get("articleBody")) for key, _, _, body in pages
            ]
            rows.append(_row("benchmark's stored trafilatura output", with_ci(ref), None))
    print(f"article-extraction-benchmark: {len(pages)} pages; published anchor: trafilatura 2.0 F1 0.958")
    print("| extractor | F1 | precision | recall | exact pages | CPU ms/page |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.worst:
        ranked = sorted(zip(scores, pages, strict=True), key=lambda sp: sp[0][0])
        for (tp, fp, fn), (key, url, _, _) in ranked[: args.worst]:
            print(f"  {key[:12]} tp={tp:.2f} fp={fp:.2f} fn={fn:.2f} {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
