"""Near-duplicate precision/recall on real article bodies with simulated syndication edits.

Usage: .venv/bin/python benchmarks/near_duplicates.py --data DIR [--data DIR2 ...] [--threshold 0.5]

DIR is an evaluation set: either a folder with `ground-truth.json` ({id: {url, articleBody}}) or a
folder of `<country>/<Publisher>.json` files (fundus layout: body.sections[].paragraphs).
Positives: each body against a syndicated copy (new title, header and footer, 10-40 % trimmed,
paragraphs reordered, ~2 % of words edited). Negatives: every pair of different bodies, and the
same-subject pairs (highest word overlap) reported apart. A pair matches when the two
fingerprints share an LSH band and their estimated Jaccard reaches the threshold: the rule the
Redis script applies. Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.dedup.fingerprint import Fingerprint, fingerprint, normalize, story_similarity

HEADERS = [
    "By Staff Writer | Syndicated News Service",
    "EXCLUSIVE — Updated 14:32 GMT",
    "From our partners at the Daily Wire Desk. Reading time: 4 minutes",
    "Advertisement · Story continues below",
]
FOOTERS = [
    "This article originally appeared on the partner site and is republished with permission. "
    "Copyright 2024 All rights reserved. Sign up for our newsletter to get the latest news.",
    "Related: More stories from our network. Follow us on social media for updates and share "
    "this article with your friends. Comments are closed.",
    "Reporting by our correspondents; editing by the news desk. Our standards: the trust principles.",
]
EDITS = {"said": "says", "the": "a", "and": "&", "will": "would", "is": "was", "on": "upon"}


def load_bodies(paths: list[Path]) -> list[str]:
    """Article bodies of every evaluation set given, long enough for a signature."""
    bodies: list[str] = []
    for path in paths:
        truth = path / "ground-truth.json"
        if truth.exists():
            bodies += [v["articleBody"] for v in json.loads(truth.read_text()).values()]
            continue
        for file in sorted(path.glob("*/*.json")):
            versions = list(json.loads(file.read_text()).values())  # versions of one page: keep one
            sections = versions[-1].get("body", {}).get("sections", []) if versions else []
            bodies.append("\n\n".join(p for s in sections for p in s.get("paragraphs", [])))
    return [b for b in bodies if fingerprint(b, None).signature is not None]


def paragraphs(body: str) -> list[str]:
    parts = [p.strip() for p in body.split("\n") if p.strip()]
    if len(parts) >= 4:
        return parts
    sentences = [s.strip() + "." for s in body.replace("。", ".").split(". ") if s.strip()]
    return sentences if len(sentences) > len(parts) else parts


def syndicate(body: str, rng: random.Random, trim: float) -> str:
    """A syndicated copy: new title/header/footer, `trim` of the words cut, reordered, edited."""
    paras = paragraphs(body)
    total = sum(len(p) for p in paras)
    if rng.random() < 0.5:  # cut the tail
        kept, size = [], 0
        for p in paras:
            if size + len(p) > total * (1 - trim) and kept:
                break
            kept.append(p)
            size += len(p)
    else:  # drop paragraphs here and there
        kept = list(paras)
        while len(kept) > 1 and sum(len(p) for p in kept) > total * (1 - trim):
            kept.pop(rng.randrange(len(kept)))
    for _ in range(min(2, len(kept) // 3)):
        i = rng.randrange(len(kept) - 1)
        kept[i], kept[i + 1] = kept[i + 1], kept[i]
    words = " \n".join(kept).split(" ")
    for i in rng.sample(range(len(words)), len(words) // 50):
        words[i] = EDITS.get(words[i], words[i] + "s")
    title = " ".join(rng.sample(body.split()[:40], min(8, len(body.split()[:40]))))
    return "\n\n".join([title.title(), rng.choice(HEADERS), " ".join(words), rng.choice(FOOTERS)])


def matches(a: Fingerprint, b: Fingerprint, threshold: float) -> tuple[bool, float]:
    """The candidate rules (a shared LSH band or sampled shingle) plus verification, as the Redis
    script applies them."""
    sim = story_similarity(a, b)
    candidate = bool(set(a.bands) & set(b.bands)) or bool(set(a.sample.keys) & set(b.sample.keys))
    return candidate and sim >= threshold, sim


def word_jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / max(1, len(a | b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--copies", type=int, default=3, help="syndicated copies per body")
    args = parser.parse_args()
    rng = random.Random(7)
    bodies = load_bodies(args.data)
    fps = [fingerprint(b, None) for b in bodies]
    buckets: dict[str, list[int]] = {"10-20%": [0, 0], "20-30%": [0, 0], "30-40%": [0, 0]}
    tp = fn = 0
    for body, fp in zip(bodies, fps, strict=True):
        for _ in range(args.copies):
            trim = rng.uniform(0.1, 0.4)
            hit, _sim = matches(fp, fingerprint(syndicate(body, rng, trim), None), args.threshold)
            tp, fn = tp + hit, fn + (not hit)
            bucket = buckets[f"{int(trim * 10) * 10}-{int(trim * 10) * 10 + 10}%"]
            bucket[0] += hit
            bucket[1] += 1
    words = [set(normalize(b).split()) for b in bodies]
    fp_count = negatives = 0
    overlap: list[tuple[float, int, int]] = []
    for i in range(len(bodies)):
        for j in range(i + 1, len(bodies)):
            hit, _sim = matches(fps[i], fps[j], args.threshold)
            negatives += 1
            fp_count += hit
            overlap.append((word_jaccard(words[i], words[j]), i, j))
    hardest = sorted(overlap, reverse=True)[:100]
    hard_fp = sum(matches(fps[i], fps[j], args.threshold)[0] for _, i, j in hardest)
    hard_max = max(story_similarity(fps[i], fps[j]) for _, i, j in hardest)
    print(f"bodies: {len(bodies)}   threshold: {args.threshold}")
    print(f"positives: {tp + fn}   recall: {tp / (tp + fn):.4f}")
    for name, (hit, total) in buckets.items():
        print(f"  trimmed {name}: recall {hit / max(1, total):.4f} ({hit}/{total})")
    print(f"negative pairs: {negatives}   false positives: {fp_count}")
    low, high = hardest[-1][0], hardest[0][0]
    print(
        f"same-subject pairs (100 highest word overlap, word Jaccard {low:.2f}-{high:.2f}):"
        f" false positives {hard_fp}, highest estimated similarity {hard_max:.3f}"
    )
    print(f"precision: {tp / max(1, tp + fp_count):.4f}")


if __name__ == "__main__":
    main()
