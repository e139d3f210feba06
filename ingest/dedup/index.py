"""The story index in Redis: one Lua script per batch (`assign.lua`) looks up and inserts atomically.

See `ingest.dedup.fingerprint` for what is compared; here is only where it is kept.
Two workers handling two copies at the same moment are serialised by Redis, so the
second always sees the first, for exact *and* near duplicates. The script derives key
names from the prefix, so it needs a single Redis (not Redis Cluster).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from importlib import resources

import redis

from ingest.dedup.fingerprint import MAX_CANDIDATES, MAX_SIZE_RATIO, MIN_EXACT_TOKENS, DedupItem
from ingest.log import get_logger
from ingest.models import DedupResult

log = get_logger(__name__)

MAX_SCRIPT_ITEMS = 200  # bounds how long one script call blocks Redis
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
        return args


def _sha_int(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:19], 16)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
