"""Language detection: accuracy on the lingua test data, time per article, RSS of the loaded models.

Usage: .venv/bin/python benchmarks/language_bench.py [--data DIR] [--corpus DIR [--lingua-high]]
  --data: lingua test data (<iso>/testdata/sentences.txt); --corpus: articles as the farm loads them
  (`benchmarks/farm.py`: a ground-truth.json or *.txt files), each detected the way the pipeline
  does (title and the start of the text); --lingua-high also runs lingua's high-accuracy mode,
  every model preloaded, on the same articles: cost per article and agreement.
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from ingest.language.detect import LanguageDetector

EN_ARTICLE = (Path(__file__).resolve().parent.parent / "app/demo/feeds/seed_sohu_armenia.txt").read_text()
ZH_ARTICLE = (
    "中新网北京10月31日电 国家统计局31日发布数据显示，10月份，中国制造业采购经理指数为51.4%，"
    "比上月上升0.3个百分点，制造业继续保持稳步恢复态势。"
) * 12
# A headline alone (fewer than 120 letters): if the blend of lingua low and py3langid is unsure,
# lingua's high-accuracy models re-rank its best candidates (INGEST_SHORT_TEXT_MODELS=1, default).
HEADLINE = "Bundesregierung beschließt Entlastungspaket für Familien mit geringem Einkommen"


def rss_mb() -> float:
    """Resident set size of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def per_call_ms(detector: LanguageDetector, text: str, rounds: int = 2000) -> float:
    """Mean CPU time of one detect() call, in milliseconds."""
    start = time.process_time()
    for _ in range(rounds):
        detector.detect(text)
    return (time.process_time() - start) / rounds * 1000


def accuracy(detector: LanguageDetector, data: Path, kind: str, group: int) -> None:
    """Per-language and mean accuracy; `group` sentences are joined to make one text."""
    scores: dict[str, float] = {}
    wrong: Counter[str] = Counter()
    for folder in sorted(p for p in data.iterdir() if (p / "testdata").is_dir()):
        lines = [x for x in (folder / "testdata" / f"{kind}.txt").read_text().splitlines() if x.strip()]
        texts = [" ".join(lines[i : i + group]) for i in range(0, len(lines), group)]
        hits = 0
        for text in texts:
            code = detector.detect(text).code
            hits += code == folder.name
            if code != folder.name:
                wrong[f"{folder.name}->{code}"] += 1
        scores[folder.name] = hits / len(texts)
    mean = sum(scores.values()) / len(scores)
    low = sorted(scores.items(), key=lambda kv: kv[1])[:8]
    print(f"{kind} x{group}: mean accuracy {mean:.3f} over {len(scores)} languages; lowest {low}")
    print(f"  most common errors: {wrong.most_common(8)}")


def articles(detector: LanguageDetector, corpus: Path, with_lingua: bool) -> None:
    """CPU per article on real articles, ours and (optionally) lingua high on the same samples."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks.farm import load_corpus

    samples = [f"{d.title}\n" + "\n\n".join(d.paragraphs) for d in load_corpus(corpus)]
    samples = [s[:2000] for s in samples]  # what Preparer.tag hands over (LANGUAGE_SAMPLE_CHARS)
    start = time.process_time()
    ours = [detector.detect(s).code for s in samples * 3][: len(samples)]
    print(
        f"{len(samples)} articles: ours {(time.process_time() - start) / (3 * len(samples)) * 1000:.3f} "
        "ms/article"
    )
    if not with_lingua:
        return
    from lingua import LanguageDetectorBuilder

    start = time.process_time()
    high = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()
    print(f"lingua high: load {time.process_time() - start:.1f} s CPU, RSS {rss_mb():.0f} MB")
    start = time.process_time()
    found = [high.detect_language_of(s) for s in samples * 3][: len(samples)]
    codes = [f.iso_code_639_1.name.lower() if f else "und" for f in found]
    same = sum(a == b for a, b in zip(ours, codes, strict=True))
    print(
        f"lingua high {(time.process_time() - start) / (3 * len(samples)) * 1000:.3f} ms/article; "
        f"same language as ours on {same} of {len(samples)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, help="lingua test-data directory")
    parser.add_argument("--corpus", type=Path, help="articles (article-extraction-benchmark layout)")
    parser.add_argument("--lingua-high", action="store_true", help="lingua high on the same articles")
    args = parser.parse_args(argv)
    before = rss_mb()
    start = time.process_time()
    detector = LanguageDetector()
    print(f"load: {time.process_time() - start:.2f} s, RSS {before:.0f} -> {rss_mb():.0f} MB")
    en, zh = EN_ARTICLE[:2048], ZH_ARTICLE
    print(f"en article ({len(en)} chars): {per_call_ms(detector, en):.3f} ms/detect -> {detector.detect(en)}")
    print(f"zh article ({len(zh)} chars): {per_call_ms(detector, zh):.3f} ms/detect -> {detector.detect(zh)}")
    detector.detect(HEADLINE)  # loads the candidates' high-accuracy models: steady state from here
    print(
        f"headline ({len(HEADLINE)} chars, service default, models loaded): "
        f"{per_call_ms(detector, HEADLINE, 500):.3f} ms/detect -> {detector.detect(HEADLINE)}"
    )
    plain = LanguageDetector(short_text_models=False)
    print(
        f"headline, INGEST_SHORT_TEXT_MODELS=0: {per_call_ms(plain, HEADLINE, 500):.3f} "
        f"ms/detect -> {plain.detect(HEADLINE)}"
    )
    if args.corpus:
        articles(detector, args.corpus, args.lingua_high)
    if args.data:
        accuracy(detector, args.data, "sentences", 1)
        accuracy(detector, args.data, "sentences", 5)
        print(f"RSS after accuracy runs: {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
