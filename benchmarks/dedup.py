"""Dedup cost per article and Redis memory as the index grows (10k -> 100k -> 1M articles).

Usage: .venv/bin/python benchmarks/dedup.py [--sizes 10000,100000,1000000] [--redis-url URL] [--data DIR]

The index is filled with synthetic ~3 KB bodies (words drawn Zipf-like from the vocabulary of
DIR's ground-truth.json when given, else from generated pseudo-words), spread over simulated days
so that the largest size fills one dedup window. At each size, 50-article batches (10 % syndicated
copies of indexed articles) are timed: cost per article = batch assign time / batch size.
The Redis db (default 14) is claimed with the test suite's `ingest-test-run` marker (so test
runs skip it; a db already marked is refused) and flushed before and after. "MB used" is the
server's used_memory growth (other dbs' activity shows in it); "sampled" is MEMORY USAGE of
2,000 random keys scaled to the key count. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import redis
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.dedup.fingerprint import BANDS, DedupItem, Fingerprint, fingerprint
from ingest.dedup.index import Deduplicator

WORDS_PER_BODY = 450
_FRESH = itertools.count(10**9)  # seeds of measured bodies: never indexed before
BATCH = 50
_VOCAB: list[str] = []
_CDF: np.ndarray = np.ones(1)


def vocabulary(data: Path | None) -> list[str]:
    """Words ordered by frequency: from the corpus when given, else pseudo-words."""
    if data is None:
        rng = random.Random(1)
        letters = "etaoinshrdlucmfwypvbgkjqxz"
        return ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(30000)]
    counts: dict[str, int] = {}
    for record in json.loads((data / "ground-truth.json").read_text()).values():
        for word in record["articleBody"].split():
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: -counts[w])


def _init(vocab: list[str]) -> None:
    global _VOCAB, _CDF
    _VOCAB = vocab
    weights = 1 / np.arange(1, len(vocab) + 1, dtype=np.float64)
    _CDF = np.cumsum(weights) / weights.sum()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


def body(seed: int) -> str:
    rng = np.random.default_rng(seed)
    idx = np.minimum(np.searchsorted(_CDF, rng.random(WORDS_PER_BODY)), len(_VOCAB) - 1)
    words = [_VOCAB[i] for i in idx]
    return "\n\n".join(" ".join(words[i : i + 75]) for i in range(0, WORDS_PER_BODY, 75))


def copy_of(text: str, seed: int) -> str:
    """A syndicated copy: new title and footer, last quarter cut, two paragraphs swapped."""
    paras = text.split("\n\n")
    paras = paras[: max(2, len(paras) * 3 // 4)]
    paras[0], paras[1] = paras[1], paras[0]
    return "\n\n".join([f"Partner title {seed}", *paras, "Republished with permission."])


def _fingerprints(start: int) -> list[tuple[str, Fingerprint]]:
    return [
        (f"a{i}", fingerprint(body(i), f"https://site{i % 97}.example/{i}"))
        for i in range(start, start + 500)
    ]


def fill(pool: multiprocessing.pool.Pool, starts: range) -> Iterator[list[tuple[str, Fingerprint]]]:
    yield from pool.imap(_fingerprints, starts)


def measure(dedup: Deduplicator, indexed: int, rounds: int, rng: random.Random) -> tuple[list[float], int]:
    """Per-article ms of `rounds` batches of fresh bodies; half the copies are of recent articles."""
    costs, near = [], 0
    for _ in range(rounds):
        items = []
        for k in range(BATCH):
            n = next(_FRESH)
            if k % 10 == 0:
                src = rng.randrange(max(0, indexed - 1000) if k % 20 else 0, indexed)
                text = copy_of(body(src), n)
            else:
                text = body(n)
            items.append(DedupItem(f"m{indexed}-{n}", fingerprint(text, None), None))
        start = time.perf_counter()
        results = dedup.assign(items)
        costs.append((time.perf_counter() - start) * 1000 / BATCH)
        near += sum(res.kind == "near" for res in results)
    return costs, near


MARKER = "ingest-test-run"  # the test suite skips a db holding it; so do we


def open_db(url: str) -> redis.Redis:
    """Claim the db with the test suite's marker, then flush it (keeping the marker)."""
    client = redis.Redis.from_url(url)
    claim = f"benchmark-{os.getpid()}"
    if not client.set(MARKER, claim, nx=True, ex=3600):
        raise SystemExit(f"{url} is in use ({MARKER} marker set); pick another db number")
    client.flushdb()
    client.set(MARKER, claim, ex=3600)
    return client


def sampled_mb(client: redis.Redis, samples: int = 2000) -> float:
    """Bytes of the db's keys, from MEMORY USAGE of random keys times the key count."""
    pipe = client.pipeline(transaction=False)
    for _ in range(samples):
        pipe.randomkey()
    keys = [k for k in pipe.execute() if k and k != MARKER.encode()]
    for key in keys:
        pipe.memory_usage(key, samples=0)
    sizes = [n for n in pipe.execute() if n]
    return float(np.mean(sizes)) * client.dbsize() / 2**20 if sizes else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--window-days", type=int, default=7)
    parser.add_argument(
        "--bucket-hours",
        type=int,
        default=168,
        help="time bucket of the index (default: the 7-day window, as the service uses)",
    )
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    per_day = math.ceil(sizes[-1] / args.window_days)
    per_bucket = per_day * args.bucket_hours / 24
    bits = max(8, round(math.log2(per_bucket * BANDS / 96)))  # ~96 entries per listpack hash
    vocab = vocabulary(args.data)
    _init(vocab)
    client = open_db(args.redis_url)
    clock = [time.time()]
    dedup = Deduplicator(
        client,
        prefix="bench:",
        window_days=args.window_days,
        bucket_bits=bits,
        bucket_seconds=args.bucket_hours * 3600,
        clock=lambda: clock[0],
    )
    base_mem = int(client.info("memory")["used_memory"])
    rng = random.Random(3)
    t0 = time.perf_counter()
    fp_ms = np.median([_time_fingerprint(i) for i in range(200)])
    print(
        f"articles/day {per_day}, bucket {args.bucket_hours} h, bucket_bits {bits}, "
        f"window {args.window_days} d, batch {BATCH};"
        f" fingerprint of a ~3 KB body: {fp_ms:.3f} ms (median)"
    )
    print(
        f"{'indexed':>9} {'median ms/art':>14} {'p99 ms/art':>11} {'near found':>11} "
        f"{'MB used':>8} {'MB / 100k':>10} {'sampled/100k':>12} {'fill s':>7}"
    )
    indexed = 0
    with multiprocessing.Pool(max(1, (multiprocessing.cpu_count() or 2)), _init, (vocab,)) as pool:
        for size in sizes:
            for batch in fill(pool, range(indexed, size, 500)):
                for part in range(0, len(batch), 250):
                    items = [DedupItem(aid, fp, None) for aid, fp in batch[part : part + 250]]
                    dedup.assign(items)
                indexed += len(batch)
                clock[0] = t0_clock(t0, indexed, per_day)
            measure(dedup, indexed, 5, rng)  # warm-up: script load, caches
            costs, near = measure(dedup, indexed, args.rounds, rng)
            client.expire(MARKER, 3600)
            mem = (int(client.info("memory")["used_memory"]) - base_mem) / 2**20
            sampled = sampled_mb(client)
            print(
                f"{indexed:>9} {np.median(costs):>14.3f} {np.percentile(costs, 99):>11.3f} "
                f"{near:>5}/{args.rounds * BATCH // 10:<5} {mem:>8.1f} {mem / indexed * 1e5:>10.1f} "
                f"{sampled / indexed * 1e5:>12.1f} {time.perf_counter() - t0:>7.0f}",
                flush=True,
            )
    client.flushdb()
    client.close()


_START = time.time()


def t0_clock(_t0: float, indexed: int, per_day: int) -> float:
    """Simulated time: one day passes every `per_day` indexed articles."""
    return _START + (indexed // per_day) * 86400


def _time_fingerprint(seed: int) -> float:
    text = body(seed)
    start = time.perf_counter()
    fingerprint(text, None)
    return (time.perf_counter() - start) * 1000


if __name__ == "__main__":
    main()
