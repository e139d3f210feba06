"""Cost of cleaning deeply nested HTML: linear in the input, not quadratic.

Usage: .venv/bin/python benchmarks/nested_html.py [--sizes 10000,20000,40000,80000] [--unbounded]

For each n, an entry body of `"<div>" * n` (and `<blockquote>`, `<ul>`) around one paragraph goes
through `clean_document`, the clean stage as the worker runs it; CPU seconds (process time) and
microseconds per opening tag are printed. A linear cost keeps the per-tag figure flat as n
doubles. `--unbounded` also times the parser without the depth bound (`MAX_DEPTH` lifted) for
the two smallest sizes, which is what cleaning cost before the bound.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.clean import clean_document
from ingest.clean.html import html_paragraphs

TAGS = ("div", "blockquote", "ul")


def body(tag: str, n: int) -> str:
    return f"<{tag}>" * n + "<p>The only paragraph of text in the entry.</p>" + f"</{tag}>" * n


def cpu(fn: object, *args: object) -> float:
    start = time.process_time()
    fn(*args)  # type: ignore[operator]
    return time.process_time() - start


def unbounded_paragraphs(html: str) -> list[str]:
    """html_paragraphs with the depth bound lifted: the cost before the bound existed."""
    return html_paragraphs(html, max_depth=10**9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,20000,40000,80000", help="comma-separated tag counts")
    parser.add_argument("--unbounded", action="store_true", help="also time the unbounded parser (slow)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    clean_document("Warm-up", body("div", 1000))  # rules and parser loaded before timing
    print("| tag | n | clean_document CPU s | µs per tag | unbounded parser CPU s |")
    print("|---|---|---|---|---|")
    for tag in TAGS:
        for n in sizes:
            html = body(tag, n)
            seconds = cpu(clean_document, "Nested", html)
            before = "-"
            if args.unbounded and n in sizes[:3]:
                before = f"{cpu(unbounded_paragraphs, html):.3f}"
            print(f"| {tag} | {n:,} | {seconds:.3f} | {seconds / n * 1e6:.2f} | {before} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
