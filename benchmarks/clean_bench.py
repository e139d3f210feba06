"""Clean stage speed: clean_document on the seed article as text and as HTML.

Usage: .venv/bin/python benchmarks/clean_bench.py [--rounds N]   (prints figures, asserts nothing)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ingest.clean import clean_document, load_rules

SEED = Path(__file__).resolve().parent.parent / "app" / "demo" / "feeds" / "seed_sohu_armenia.txt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args(argv)
    title, body = SEED.read_text(encoding="utf-8").split("\n", 1)
    html = "".join(f"<p>{p.strip()}</p>" for p in body.split("\n\n") if p.strip())
    rules = load_rules()
    for label, content, is_html in (("text", body, False), ("html", html, True)):
        start = time.process_time()
        for _ in range(args.rounds):
            clean_document(
                title,
                content,
                is_html=is_html,
                feed_title="Nakka",
                url="https://www.sohu.com/a/1?utm_source=rss",
                rules=rules,
            )
        per = (time.process_time() - start) / args.rounds * 1000
        print(f"clean_document {label} ({len(content)} chars): {per:.3f} ms/article, {1000 / per:.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
