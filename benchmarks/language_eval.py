"""Language identification accuracy on the lingua test data, per language and mean, and cost.

Usage: .venv/bin/python benchmarks/language_eval.py --data DIR [--per-language N] [--skip N] [--lingua-high]
       [--shuffle] [--kinds K,...] [--per-language-table] [--worst K]
  DIR holds <iso 639-1>/testdata/{sentences,word-pairs,single-words}.txt.

Three columns for our detector: `answers` (LanguageDetector(min_chars=1, abstain=False): always
gives its best guess, the setting lingua's published figures use, with short texts the blend is
unsure of re-ranked by lingua's high-accuracy models, as the service does by default),
`answers, short-text models off` (INGEST_SHORT_TEXT_MODELS=0) and `deployed` (the service's
defaults: too-short, mixed or near-tied text gets `und`, counted as wrong here). Both columns
with the models lift the service's cap on model loads per minute: this script reads thousands of
texts a second. `--service-only` skips `answers`.
`--skip N` starts at each file's text N+1: the constants were chosen on texts 31-130, so
`--skip 130` measures on texts none of them saw; `--kinds` picks the kinds of text.
Texts go in file order (language after language, as a stream of feeds in one language would),
or with `--shuffle` in a random order (every text's neighbour in another of 75 languages: the
worst case for the bounded set of loaded models).
`--lingua-high` also runs lingua's high-accuracy mode over all languages, every model preloaded
(~1.3 GB), on the same texts: the fair anchor. It runs after ours, so the peak RSS printed for
ours does not include it.

Cost is CPU time per text (process_time, so a busy machine does not inflate it), three ways:
`mean` is as deployed (texts in file order, language after language, so the bounded set of
high-accuracy models keeps being unloaded and reloaded: model loading included); `median` and
`no-load mean` (the mean over texts that loaded no model) are the detection cost in steady state,
without model loading. `loads` counts languages whose high-accuracy models were (re)loaded.
Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.language.detect import LanguageDetector, high_accuracy_languages, high_accuracy_loads

KINDS = ("sentences", "word-pairs", "single-words")
PUBLISHED = {"sentences": 0.960, "word-pairs": 0.890, "single-words": 0.743}  # lingua high, mean of 75
OURS = "ours, answers"
LINGUA = "lingua high, same texts"
SERVICE = "ours, answers, short-text models off"


@dataclass
class Run:
    """One detector on one kind of text: accuracy per language, CPU seconds and model loads per text."""

    accuracy: dict[str, float] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)
    loads: list[int] = field(default_factory=list)

    @property
    def mean_accuracy(self) -> float:
        return statistics.mean(self.accuracy.values())

    def cost(self) -> str:
        """`mean / median / no-load mean` milliseconds, and model loads."""
        ms = [s * 1000 for s in self.seconds]
        idle = [m for m, n in zip(ms, self.loads, strict=True) if n == 0] or [0.0]
        text = f"{statistics.mean(ms):.2f} / {statistics.median(ms):.3f} / {statistics.mean(idle):.3f} ms"
        return text + (f", {sum(self.loads)} loads" if any(self.loads) else "")


def rss_mb(key: str = "VmRSS") -> float:
    """Resident set size (VmRSS) or its peak so far (VmHWM) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def load(
    data: Path, kind: str, per_language: int | None, shuffle: bool, skip: int = 0
) -> list[tuple[str, str]]:
    """(language code, text) pairs after each file's first `skip`, in file order or shuffled
    (seeded: runs compare)."""
    texts = []
    for folder in sorted(p for p in data.iterdir() if (p / "testdata" / f"{kind}.txt").is_file()):
        raw = (folder / "testdata" / f"{kind}.txt").read_text(encoding="utf-8")
        lines = [x.strip() for x in raw.splitlines()]
        kept = [x for x in lines if x][skip:]
        texts += [(folder.name, x) for x in kept[:per_language]]
    if shuffle:
        random.Random(1).shuffle(texts)
    return texts


def score(classify: Callable[[str], str], texts: list[tuple[str, str]]) -> Run:
    """Accuracy per language; CPU time and high-accuracy model loads of every text."""
    run, hits, seen = Run(), Counter[str](), Counter[str]()
    for code, line in texts:
        loads, start = high_accuracy_loads(), time.process_time()
        hits[code] += classify(line) == code
        run.seconds.append(time.process_time() - start)
        run.loads.append(high_accuracy_loads() - loads)
        seen[code] += 1
    run.accuracy = {code: hits[code] / seen[code] for code in sorted(seen)}
    return run


def lingua_high() -> Callable[[str], str]:
    """lingua's high-accuracy mode over all 75 languages, every model preloaded."""
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()

    def classify(text: str) -> str:
        lang = detector.detect_language_of(text)
        return lang.iso_code_639_1.name.lower() if lang else "und"

    return classify


def print_summary(results: dict[str, dict[str, Run]], n_lang: int, args: argparse.Namespace) -> None:
    """One table per kind: published anchor, lingua high on the same texts, ours."""
    order = "shuffled" if args.shuffle else "in file order"
    which = f"{args.per_language or 'all'} texts per file"
    which += f" after the first {args.skip}" if args.skip else ""
    print(
        f"\nlingua test data: {n_lang} languages, {which}, {order}; "
        "mean accuracy over languages; CPU per text: mean as deployed (model loading included) / median / "
        "mean of texts that loaded no model"
    )
    print("| kind | detector | accuracy | CPU per text |")
    print("|---|---|---|---|")
    for kind in args.kinds:
        print(f"| {kind} | lingua high, published (all 1,000 texts) | {PUBLISHED[kind]:.3f} | |")
        for name, by_kind in results.items():
            print(f"| {kind} | {name} | {by_kind[kind].mean_accuracy:.3f} | {by_kind[kind].cost()} |")


def print_worst(results: dict[str, dict[str, Run]], kinds: list[str], worst: int) -> None:
    """The languages where ours trails lingua high on the same texts the most, per kind."""
    if LINGUA not in results or OURS not in results:
        return
    for kind in kinds:
        ours, anchor = results[OURS][kind].accuracy, results[LINGUA][kind].accuracy
        gaps = [c for c in sorted(ours, key=lambda code: ours[code] - anchor[code]) if ours[c] < anchor[c]]
        wins = sum(ours[c] > anchor[c] for c in ours)
        losses = sum(ours[c] < anchor[c] for c in ours)
        print(f"\n{kind}: ours better in {wins} languages, worse in {losses}; largest gaps:")
        print("| language | ours, answers | lingua high, same texts | difference |")
        print("|---|---|---|---|")
        for code in gaps[:worst]:
            print(f"| {code} | {ours[code]:.3f} | {anchor[code]:.3f} | {ours[code] - anchor[code]:+.3f} |")


def _kinds(value: str) -> list[str]:
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown kind(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(KINDS)}"
        )
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="lingua-testdata directory")
    parser.add_argument("--per-language", type=int, help="only the first N texts of each file")
    parser.add_argument("--skip", type=int, default=0, help="leave out the first N texts of each file")
    parser.add_argument(
        "--kinds", type=_kinds, default=list(KINDS), help=f"comma-separated, of {', '.join(KINDS)}"
    )
    parser.add_argument("--lingua-high", action="store_true", help="also run lingua high accuracy (1.3 GB)")
    parser.add_argument("--per-language-table", action="store_true", help="print accuracy per language")
    parser.add_argument("--service-only", action="store_true", help="skip `ours, answers`")
    parser.add_argument("--shuffle", action="store_true", help="texts in a random order, not file order")
    parser.add_argument("--worst", type=int, default=8, help="languages listed where ours trails lingua high")
    args = parser.parse_args(argv)
    start, base = time.process_time(), rss_mb()
    answers = LanguageDetector(min_chars=1, abstain=False, short_text_models=True, loads_per_minute=None)
    plain = LanguageDetector(min_chars=1, abstain=False, short_text_models=False)
    deployed = LanguageDetector(loads_per_minute=None)
    print(f"load: {time.process_time() - start:.2f} s CPU, RSS {base:.0f} -> {rss_mb():.0f} MB")
    systems: dict[str, Callable[[str], str]] = (
        {} if args.service_only else {OURS: lambda t: answers.detect(t).code}
    )
    systems[SERVICE] = lambda t: plain.detect(t).code
    systems["ours, deployed (und = wrong)"] = lambda t: deployed.detect(t).code
    texts = {kind: load(args.data, kind, args.per_language, args.shuffle, args.skip) for kind in args.kinds}
    results = {
        name: {kind: score(classify, texts[kind]) for kind in args.kinds}
        for name, classify in systems.items()
    }
    after, peak, loaded = rss_mb(), rss_mb("VmHWM"), high_accuracy_languages()
    if args.lingua_high:
        start = time.process_time()
        anchor = lingua_high()
        print(
            f"lingua high load: {time.process_time() - start:.2f} s CPU, RSS {after:.0f} -> {rss_mb():.0f} MB"
        )
        results[LINGUA] = {kind: score(anchor, texts[kind]) for kind in args.kinds}
    print_summary(results, len({code for code, _ in texts[args.kinds[0]]}), args)
    print(
        f"\nours: peak RSS {peak:.0f} MB, {after:.0f} MB after the runs; high-accuracy models loaded at "
        f"the end: {len(loaded)} ({', '.join(loaded)})"
    )
    if args.lingua_high:
        print(f"with lingua high loaded as well: peak RSS {rss_mb('VmHWM'):.0f} MB")
    print_worst(results, args.kinds, args.worst)
    if args.per_language_table:
        ours = results.get(OURS) or results[SERVICE]
        print("\n| language | " + " | ".join(args.kinds) + " |")
        print("|---" * (len(args.kinds) + 1) + "|")
        for code in sorted(ours[args.kinds[0]].accuracy):
            print(f"| {code} | " + " | ".join(f"{ours[k].accuracy[code]:.3f}" for k in args.kinds) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
