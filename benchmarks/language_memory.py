"""Peak RSS of a worker process whose short texts load lingua's high-accuracy models.

Usage: .venv/bin/python benchmarks/language_memory.py --data DIR [--texts N]
  DIR: lingua test data (<iso>/testdata/word-pairs.txt).

The pipeline benchmark's articles are long, so they never load these models. Here one process per
row imports what a worker imports, then detects N word pairs in each of 12 common news languages
with the service's detector, made to answer every one (the service leaves texts under 20 letters
`und`; here every pair takes the short-text path, a stress for the model set): once with the
service's cap on model loads per minute, once with no cap (every load it asks for). Each row is a
fresh process, so its peak RSS (VmHWM) is its own.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.language_eval import rss_mb

WORKER_MODULES = (
    "workers.worker",
    "workers.jobs",
    "ingest.services.process",
    "ingest.clean.extract",
    "ingest.dedup.index",
)
LANGUAGES = ("en", "de", "fr", "es", "ru", "pl", "it", "nl", "pt", "ar", "tr", "cs")


def one_row(data: Path, texts: int, capped: bool) -> str:
    """Run in the child: a worker's imports, then the word pairs; one Markdown row."""
    for module in WORKER_MODULES:
        importlib.import_module(module)
    from ingest.language.detect import LanguageDetector, high_accuracy_languages, high_accuracy_loads
    from ingest.settings import Settings

    per_minute = Settings.from_env({}).short_text_loads_per_minute if capped else None
    detector = LanguageDetector(loads_per_minute=per_minute, min_chars=1, abstain=False)
    detector.detect("The central bank raised its benchmark interest rate on Wednesday, citing inflation.")
    base = rss_mb("VmRSS")
    for code in LANGUAGES:
        lines = (data / code / "testdata" / "word-pairs.txt").read_text(encoding="utf-8").splitlines()
        for line in [x.strip() for x in lines if x.strip()][:texts]:
            detector.detect(line)
    cap = f"{per_minute:g} a minute" if capped else "none"
    return (
        f"| {cap} | {base:.0f} | {rss_mb('VmHWM'):.0f} | {rss_mb('VmRSS'):.0f} | "
        f"{high_accuracy_loads()} | {len(high_accuracy_languages())} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="lingua-testdata directory")
    parser.add_argument("--texts", type=int, default=100, help="word pairs per language")
    parser.add_argument("--row", choices=("capped", "uncapped"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row:
        print(one_row(args.data, args.texts, args.row == "capped"))
        return 0
    print(
        f"{args.texts} word pairs in each of {len(LANGUAGES)} languages ({', '.join(LANGUAGES)}), "
        "a worker's imports loaded; MB"
    )
    print("| load cap | RSS before | peak RSS | RSS after | model loads | languages loaded at the end |")
    print("|---|---|---|---|---|---|")
    for row in ("capped", "uncapped"):
        command = [
            sys.executable,
            __file__,
            "--data",
            str(args.data),
            "--texts",
            str(args.texts),
            "--row",
            row,
        ]
        child = subprocess.run(command, capture_output=True, text=True, check=True)
        print(child.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
