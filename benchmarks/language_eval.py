"""Language identification accuracy on the lingua test data, per language and mean, and cost.

Usage: .venv/bin/python benchmarks/language_eval.py --data DIR [--per-language N] [--lingua-high]
  DIR holds <iso 639-1>/testdata/{sentences,word-pairs,single-words}.txt.

Two columns for our detector: `answers` (LanguageDetector(min_chars=1, abstain=False): always
gives its best guess, the setting lingua's published figures use) and `deployed` (the service's
defaults: too-short, mixed or near-tied text gets `und`, counted as wrong here).
`--lingua-high` also runs lingua's high-accuracy mode over all languages (the published anchor;
~1.3 GB once every model is loaded). Time per text is CPU time (process_time), so a busy machine
does not inflate it. RSS is read from /proc after the runs.
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ingest.language import LanguageDetector, high_accuracy_languages

KINDS = ("sentences", "word-pairs", "single-words")
PUBLISHED = {"sentences": 0.960, "word-pairs": 0.890, "single-words": 0.743}  # lingua high, mean of 75


def rss_mb() -> float:
    """Resident set size of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def load(data: Path, kind: str, per_language: int | None) -> dict[str, list[str]]:
    """Texts per language code, in file order."""
    texts = {}
    for folder in sorted(p for p in data.iterdir() if (p / "testdata" / f"{kind}.txt").is_file()):
        raw = (folder / "testdata" / f"{kind}.txt").read_text(encoding="utf-8")
        lines = [x.strip() for x in raw.splitlines()]
        texts[folder.name] = [x for x in lines if x][:per_language]
    return texts


def score(classify: Callable[[str], str], texts: dict[str, list[str]]) -> tuple[dict[str, float], float]:
    """Accuracy per language and CPU milliseconds per text."""
    per_language = {}
    count = 0
    start = time.process_time()
    for code, lines in texts.items():
        per_language[code] = sum(classify(line) == code for line in lines) / len(lines)
        count += len(lines)
    return per_language, (time.process_time() - start) / count * 1000


def lingua_high() -> Callable[[str], str]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().build()

    def classify(text: str) -> str:
        lang = detector.detect_language_of(text)
        return lang.iso_code_639_1.name.lower() if lang else "und"
    return classify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="lingua-testdata directory")
    parser.add_argument("--per-language", type=int, help="only the first N texts of each file")
    parser.add_argument("--lingua-high", action="store_true", help="also run lingua high accuracy (1.3 GB)")
    parser.add_argument("--per-language-table", action="store_true", help="print accuracy per language")
    args = parser.parse_args(argv)
    start, base = time.process_time(), rss_mb()
    answers = LanguageDetector(min_chars=1, abstain=False)
    deployed = LanguageDetector()
    print(f"load: {time.process_time() - start:.2f} s CPU, RSS {base:.0f} -> {rss_mb():.0f} MB")
    systems: dict[str, Callable[[str], str]] = {
        "ours, answers": lambda t: answers.detect(t).code,
        "ours, deployed (und = wrong)": lambda t: deployed.detect(t).code,
    }
    results: dict[str, dict[str, tuple[dict[str, float], float]]] = {name: {} for name in systems}
    for kind in KINDS:
        texts = load(args.data, kind, args.per_language)
        for name, classify in systems.items():
            results[name][kind] = score(classify, texts)
    peak = rss_mb()
    loaded = high_accuracy_languages()
    if args.lingua_high:
        systems["lingua high (all languages)"] = lingua_high()
        results["lingua high (all languages)"] = {
            kind: score(systems["lingua high (all languages)"], load(args.data, kind, args.per_language))
            for kind in KINDS}
    n_lang = len(next(iter(results.values()))["sentences"][0])
    print(f"\nlingua test data: {n_lang} languages, {args.per_language or 'all'} texts per file; "
          "mean accuracy over languages (CPU ms per text)")
    print("| detector | sentences | word pairs | single words |")
    print("|---|---|---|---|")
    print("| lingua high, published | 0.960 | 0.890 | 0.743 |")
    for name, by_kind in results.items():
        cells = [f"{statistics.mean(by_kind[k][0].values()):.3f} ({by_kind[k][1]:.2f} ms)" for k in KINDS]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\nRSS after our runs: {peak:.0f} MB; high-accuracy models loaded at the end: {len(loaded)} "
          f"({', '.join(loaded)})")
    if args.per_language_table:
        ours = results["ours, answers"]
        print("\n| language | sentences | word pairs | single words |")
        print("|---|---|---|---|")
        for code in sorted(ours["sentences"][0]):
            print(f"| {code} | " + " | ".join(f"{ours[k][0][code]:.3f}" for k in KINDS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
