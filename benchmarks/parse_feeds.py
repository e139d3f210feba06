"""Run every feed file under a directory through parse_feed and print figures per format.

    .venv/bin/python benchmarks/parse_feeds.py --data DIR

The format is the file's top-level folder under DIR (the feed-rs fixture layout:
rss0, rss1, rss2, atom, jsonfeed, xml). `*.serde.json` files are feed-rs's
expected outputs: they are not parsed, but their entry counts are compared
with ours and mismatches listed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.errors import ParseError
from ingest.models import FetchResult
from ingest.parse import parse_feed

FEED_SUFFIXES = {".xml", ".rdf", ".rss", ".atom", ".json"}


@dataclass
class Tally:
    files: int = 0
    ok: int = 0
    entries: int = 0
    warnings: int = 0
    errors: list[str] = field(default_factory=list)
    count_mismatches: list[str] = field(default_factory=list)


def feed_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in FEED_SUFFIXES and not p.name.endswith(".serde.json")
    )


def expected_entries(path: Path) -> int | None:
    """Entry count in feed-rs's expected output next to the feed, if there is one."""
    expected = path.with_name(path.stem + ".serde.json")
    if not expected.exists():
        return None
    entries = json.loads(expected.read_text(encoding="utf-8")).get("entries")
    return len(entries) if isinstance(entries, list) else None


def run_one(path: Path, root: Path, tally: Tally, verbose: bool) -> None:
    tally.files += 1
    result = FetchResult(
        url=f"https://feeds.example.invalid/{path.relative_to(root)}",
        status=200,
        content=path.read_bytes(),
        headers={},
    )
    try:
        feed = parse_feed(result, feed_id=1, feed_url=result.url)
    except ParseError as exc:
        tally.errors.append(f"{path.relative_to(root)}: {exc}")
        return
    tally.ok += 1
    tally.entries += len(feed.entries)
    tally.warnings += len(feed.warnings)
    if verbose:
        for warning in feed.warnings:
            print(f"  warning {path.relative_to(root)}: {warning}")
    expected = expected_entries(path)
    if expected is not None and expected != len(feed.entries):
        tally.count_mismatches.append(f"{path.relative_to(root)}: {len(feed.entries)} vs feed-rs {expected}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="directory tree of feed files")
    parser.add_argument("--verbose", action="store_true", help="also list parse warnings")
    args = parser.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    tallies: dict[str, Tally] = defaultdict(Tally)
    started = time.perf_counter()
    for path in feed_files(args.data):
        rel = path.relative_to(args.data)
        run_one(path, args.data, tallies[rel.parts[0] if len(rel.parts) > 1 else "."], args.verbose)
    elapsed = time.perf_counter() - started
    print(f"{'format':<10} {'files':>5} {'ok':>5} {'entries':>8} {'warnings':>8} {'errors':>6} {'count≠':>6}")
    for name, t in sorted(tallies.items()):
        print(
            f"{name:<10} {t.files:>5} {t.ok:>5} {t.entries:>8} {t.warnings:>8} {len(t.errors):>6} "
            f"{len(t.count_mismatches):>6}"
        )
    total = sum(t.files for t in tallies.values())
    print(f"total: {total} files in {elapsed:.2f}s ({elapsed / max(total, 1) * 1000:.1f} ms/file)")
    for name, t in sorted(tallies.items()):
        for line in t.errors:
            print(f"error [{name}] {line}")
        for line in t.count_mismatches:
            print(f"entry count [{name}] {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
