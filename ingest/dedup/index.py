"""The story index in Redis: one Lua script per batch (`assign.lua`) looks up and inserts atomically.

See `ingest.dedup.fingerprint` for what is compared; here is only where it is kept.
Two workers handling two copies at the same moment are serialised by Redis, so the
second always sees the first, for exact *and* near duplicates. The script derives key
names from the prefix, so it needs a single Redis (not Redis Cluster).
"""

from __future__ import annotations

import hashlib
import math
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources

import redis

from ingest.dedup.features import FACTS_MIN, NAMES_MATCH, NAMES_MIN, NUMBERS_MATCH, NUMBERS_MIN, SAMPLE_MIN
from ingest.dedup.fingerprint import MAX_CANDIDATES, MAX_SIZE_RATIO, MIN_EXACT_TOKENS, DedupItem, Fingerprint
from ingest.log import get_logger
from ingest.models import DedupResult

log = get_logger(__name__)

MAX_SCRIPT_ITEMS = 200  # bounds how long one script call blocks Redis
BOILERPLATE_KEYS = 2048  # sentence counts kept per domain (two generations: ~0.3 MB at most)
_LUA = resources.files("ingest.dedup").joinpath("assign.lua").read_text()


class Deduplicator:
    """Assigns batches of articles to stories against a windowed Redis index."""

    def __init__(
        self,
        redis: redis.Redis,
        *,
        prefix: str = "ingest:",
        window_days: int = 7,
        threshold: float = 0.5,
        bucket_bits: int = 15,
        bucket_seconds: int | None = None,
        clock: Callable[[], float] = time.time,
        boilerplate_docs: int = 2,
    ) -> None:
        """`bucket_bits`: log2 of hashes per day bucket; keep articles/day * 32 / 2**bits
        under the server's `hash-max-listpack-entries` (128 by default) for compact memory."""
        self._redis = redis
        self._prefix = f"{prefix}dedup:"
        self._window = window_days * 86400
        self._threshold = threshold
        self._band_bits = bucket_bits
        self._exact_bits = max(1, bucket_bits - 4)
        self._period = bucket_seconds or self._window
        self._clock = clock
        self._script = redis.register_script(_LUA)
        self._boilerplate_docs = boilerplate_docs

    def boilerplate(self, domains: Mapping[str, Mapping[int, int]]) -> dict[str, frozenset[int]]:
        """Of each domain's sentence keys (with the number of the batch's stories holding each),
        those in `boilerplate_docs` other stories of the site: earlier ones, or others of the
        batch (a feed's first batch brings many releases of the site at once)."""
        wanted = {d: list(keys) for d, keys in domains.items() if d and keys}
        pipe = self._redis.pipeline(transaction=False)
        for domain, keys in wanted.items():
            pipe.hmget(self._sentences_key(domain), [str(k) for k in keys])
            pipe.hmget(self._sentences_key(domain, old=True), [str(k) for k in keys])
        replies = iter(pipe.execute())
        found: dict[str, frozenset[int]] = {}
        for domain, keys in wanted.items():
            now, old = next(replies), next(replies)
            batch = domains[domain]
            counts = [
                int(a or 0) + int(b or 0) + batch[k] - 1 for k, a, b in zip(keys, now, old, strict=True)
            ]
            found[domain] = frozenset(
                k for k, n in zip(keys, counts, strict=True) if n >= self._boilerplate_docs
            )
        return found

    def count_sentences(self, docs: Iterable[tuple[str, Iterable[int]]]) -> None:
        """Count each (domain, sentence keys) of stories just assigned (exact duplicates left out).
        Bounded: a domain's counts live in two hashes of up to BOILERPLATE_KEYS fields; when the
        current one is full it becomes the old one (the old one dropped), and both expire after
        the dedup window, so a sentence the site keeps repeating stays counted."""
        pipe = self._redis.pipeline(transaction=False)
        domains = set()
        for domain, keys in docs:
            if domain:
                domains.add(domain)
                for key in set(keys):
                    pipe.hincrby(self._sentences_key(domain), str(key), 1)
        if not domains:
            return
        for domain in domains:
            pipe.expire(self._sentences_key(domain), self._window)
            pipe.expire(self._sentences_key(domain, old=True), self._window)
            pipe.hlen(self._sentences_key(domain))
        sizes = pipe.execute()[-3 * len(domains) :][2::3]
        for domain, size in zip(domains, sizes, strict=True):
            if int(size) > BOILERPLATE_KEYS:
                self._redis.rename(self._sentences_key(domain), self._sentences_key(domain, old=True))

    def _sentences_key(self, domain: str, *, old: bool = False) -> str:
        return f"{self._prefix}{'s0' if old else 's'}:{domain}"

    def assign(self, items: Sequence[DedupItem]) -> list[DedupResult]:
        """Story of each item, in order; later items also dedup against earlier ones."""
        results: list[DedupResult] = []
        for start in range(0, len(items), MAX_SCRIPT_ITEMS):
            results += self._assign_chunk(items[start : start + MAX_SCRIPT_ITEMS])
        return results

    def _assign_chunk(self, items: Sequence[DedupItem]) -> list[DedupResult]:
        if not items:
            return []
        now = self._clock()
        gen = int(now // self._period)
        ngens = math.ceil(self._window / self._period) + 1
        expire_at = (gen + 1) * self._period + self._window
        args: list[str | bytes | int] = [
            self._prefix,
            gen,
            ngens,
            expire_at,
            repr(self._threshold),
            self._window,
            MAX_CANDIDATES,
            MAX_SIZE_RATIO,
            len(items),
            SAMPLE_MIN,
            NUMBERS_MIN,
            repr(NUMBERS_MATCH),
            NAMES_MIN,
            repr(NAMES_MATCH),
            FACTS_MIN,
        ]
        for item in items:
            args += self._item_args(item, now)
        raw = self._script(args=args)
        results = [
            DedupResult(
                story_id=_text(story),
                kind=_text(kind),
                duplicate_of=_text(dup) or None,
                similarity=float(sim) if sim else None,
            )
            for kind, story, dup, sim in raw
        ]
        log.debug(
            "dedup.assign",
            items=len(items),
            near=sum(r.kind == "near" for r in results),
            exact=sum(r.kind == "exact" for r in results),
        )
        return results

    def _item_args(self, item: DedupItem, now: float) -> list[str | bytes | int]:
        if "\n" in item.article_id:
            raise ValueError(f"article id contains a newline: {item.article_id!r}")
        fp = item.fingerprint
        ts = int(item.published_at.timestamp()) if item.published_at else int(now)
        exact = []
        if fp.canonical_url:
            exact.append(_sha_int("u\0" + fp.canonical_url))
        if fp.words >= MIN_EXACT_TOKENS:
            exact.append(int(fp.content_hash[:19], 16))
        args: list[str | bytes | int] = [item.article_id, ts, len(exact)]
        for value in exact:  # 76 bits: bucket (low bits) + 63-bit field
            args += [value & ((1 << self._exact_bits) - 1), value >> 13]
        args += [fp.signature or b"", fp.shingles, len(fp.bands)]
        for band in fp.bands:  # 46 bits: bucket + 31-bit field
            args += [band & ((1 << self._band_bits) - 1), band >> 33]
        args += [*_sketches(fp), len(fp.sample.keys)]
        for key in fp.sample.keys:  # as the bands: bucket + 31-bit field
            args += [key & ((1 << self._band_bits) - 1), (key >> 33) & 0x7FFFFFFF]
        return args


def _sketches(fp: Fingerprint) -> tuple[str, bytes]:
    """The record's sample and facts: "sampcap numcap namecap nsamp nnum nname" and the values
    packed big-endian (4 bytes per sampled rank, 2 per number or name hash)."""
    ranks, numbers, names = fp.sample.ranks, fp.numbers, fp.names
    meta = " ".join(
        str(int(x))
        for x in (
            ranks.capped,
            numbers.capped,
            names.capped,
            len(ranks.values),
            len(numbers.values),
            len(names.values),
        )
    )
    blob = struct.pack(
        f">{len(ranks.values)}I{len(numbers.values)}H{len(names.values)}H",
        *ranks.values,
        *numbers.values,
        *names.values,
    )
    return meta, blob


def _sha_int(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:19], 16)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
