"""Exact and near-duplicate story assignment, indexed in Redis.

Exact: the canonical URL or the sha256 of the normalized body was seen before.
Near: MinHash over word 3-shingles (character 4-grams for CJK/Thai script),
LSH with 32 bands of 2 rows (a pair at Jaccard 0.3 shares a band with
probability 0.95, at 0.5 with 0.9999; a trimmed copy with a new header can sit
near 0.35), verified by the similarity estimated from 128 one-byte ("b-bit")
minhash values: containment of the shorter body in the longer (see `similarity`).

Memory stays bounded and cost per article flat because every index entry lives
in a time bucket (one bucket per `bucket_seconds`, by default the whole window)
that expires `window_days` after the bucket ends; lookups read the live buckets
(two with the default), so the cost per article does not grow with the corpus;
the price is that the index holds up to twice the window's articles. Band and
exact entries are hash fields spread over many small Redis hashes
(listpack-encoded, ~11 bytes an entry) that map to a per-index sequence number;
each indexed article has one small record (ids, time, signature).

Concurrency: one Lua script per batch (of at most `MAX_SCRIPT_ITEMS`) does
lookup + insert for each item in turn, atomically. Two workers handling two
copies at the same moment are serialised by Redis, so the second always sees the
first, for exact *and* near duplicates. The script derives key names from the
prefix, so it needs a single Redis (not Redis Cluster).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np
import redis

from ingest.log import get_logger
from ingest.models import DedupResult

log = get_logger(__name__)

NUM_PERM = 128
BANDS = 32
ROWS = 2
MIN_WORDS = 30  # shorter bodies get exact dedup only
MIN_EXACT_TOKENS = 5  # shorter bodies ("Read more") never count as identical bodies
MAX_SIZE_RATIO = 4  # containment only between bodies at most this many times longer
MAX_CANDIDATES = 8  # LSH candidates verified per article, most shared bands first
MAX_SCRIPT_ITEMS = 200  # bounds how long one script call blocks Redis

_rng = np.random.default_rng(0x5EED_D3D0)
_PERM_A = _rng.integers(1, 1 << 63, NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_PERM_B = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64)
_BAND_MUL = _rng.integers(1, 1 << 63, ROWS + 1, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_SH1, _SH2, _SH3, _SH4 = (np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F,
                                                 0x165667B19E3779F9, 0xFF51AFD7ED558CCD))

# Scripts written without spaces between words: each character is a token.
_CHAR_SCRIPTS = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"  # Thai, Lao, Myanmar, Khmer
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # kana, CJK ideographs
)
_WORD = re.compile(r"[^\W_]+")  # runs of word characters: the normalized body's space-separated words
_TOKEN = re.compile(f"[{_CHAR_SCRIPTS}]|[^\\s{_CHAR_SCRIPTS}]+")
_CHAR_TOKEN = re.compile(f"[{_CHAR_SCRIPTS}]")
_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ocid|cmpid)$", re.IGNORECASE)


@dataclass(frozen=True)
class Fingerprint:
    """What dedup needs of a body and URL; computed once, without I/O."""

    content_hash: str  # sha256 hex of the normalized body
    canonical_url: str | None
    signature: bytes | None  # NUM_PERM one-byte minhash values; None when too short
    bands: tuple[int, ...]  # BANDS 64-bit LSH band hashes; empty when too short
    words: int  # body length in words (a CJK/Thai character counts half)
    shingles: int = 0  # distinct shingles behind the signature


@dataclass(frozen=True)
class DedupItem:
    """One article to assign to a story."""

    article_id: str
    fingerprint: Fingerprint
    published_at: datetime | None


def normalize(text: str) -> str:
    """Casefold and collapse punctuation and whitespace, so cosmetic edits hash alike."""
    return " ".join(_WORD.findall(text.casefold()))


class _TokenHashes(dict[str, int]):
    """token -> crc32 of its UTF-8 bytes, so that known tokens are hashed without a Python call
    (`map(_TOKEN_HASHES.__getitem__, tokens)`); emptied at `_TOKEN_CACHE_SIZE` entries."""

    def __missing__(self, token: str) -> int:
        if len(self) >= _TOKEN_CACHE_SIZE:
            self.clear()
        value = self[token] = zlib.crc32(token.encode())
        return value


_TOKEN_CACHE_SIZE = 65_536  # bounds memory: ~10-20 MB per table at most
_TOKEN_HASHES = _TokenHashes()


def content_hash(text: str) -> str:
    """sha256 hex of the normalized body: `fingerprint(text, url).content_hash`, without the MinHash."""
    return hashlib.sha256(normalize(text).encode()).hexdigest()


def canonical_url(url: str | None) -> str | None:
    """Scheme-, www-, port-, fragment- and tracking-insensitive form of a URL."""
    if not url or not url.strip():
        return None
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").removeprefix("www.")
    if not host:
        return url.strip()
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not _TRACKING.match(k)))
    path = parts.path.rstrip("/")
    return f"{host}{port}{path}" + (f"?{query}" if query else "")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads combined hashes over all 64 bits."""
    x = (x ^ (x >> np.uint64(30))) * _SH2
    x = (x ^ (x >> np.uint64(27))) * _SH4
    return x ^ (x >> np.uint64(31))


def _shingles(tokens: list[str], size: int) -> np.ndarray:
    """Distinct 64-bit hashes of `size`-token shingles."""
    words = np.fromiter(map(_TOKEN_HASHES.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
    n = len(tokens) - size + 1
    acc = words[:n] * _SH1
    for i, mul in enumerate((_SH2, _SH3, _SH4)[: size - 1], start=1):
        acc = acc + words[i : i + n] * mul + np.uint64(i)
    return np.unique(_mix(acc))


def _minhash(shingles: np.ndarray) -> np.ndarray:
    """NUM_PERM minimum values of multiply-add hash permutations."""
    with np.errstate(over="ignore"):
        hashed = np.multiply(_PERM_A[:, None], shingles[None, :])
        hashed += _PERM_B[:, None]
        return hashed.min(axis=1)


def _bands(mins: np.ndarray) -> tuple[int, ...]:
    rows = mins[: BANDS * ROWS].reshape(BANDS, ROWS)
    acc = np.arange(BANDS, dtype=np.uint64) * _BAND_MUL[ROWS]
    for r in range(ROWS):
        acc = acc + rows[:, r] * _BAND_MUL[r]
    return tuple(_mix(acc).tolist())


def fingerprint(text: str, url: str | None) -> Fingerprint:
    """Hash, canonical URL and MinHash/LSH signature of one article body."""
    words_list = _WORD.findall(text.casefold())
    norm = " ".join(words_list)  # normalize(text)
    content_hash = hashlib.sha256(norm.encode()).hexdigest()
    chars = len(_CHAR_TOKEN.findall(norm))
    tokens = _TOKEN.findall(norm) if chars else words_list  # words_list == norm.split()
    words = len(tokens) - chars + chars // 2
    if words < MIN_WORDS:
        return Fingerprint(content_hash, canonical_url(url), None, (), words)
    size = 4 if chars * 2 > len(tokens) else 3
    shingles = _shingles(tokens, size)
    mins = _minhash(shingles)
    signature = ((mins >> np.uint64(32)) & np.uint64(0xFF)).astype(np.uint8).tobytes()
    return Fingerprint(content_hash, canonical_url(url), signature, _bands(mins), words, len(shingles))


def estimate_jaccard(a: bytes, b: bytes) -> float:
    """Jaccard from one-byte minhashes, corrected for chance byte collisions (1/256)."""
    if not a or len(a) != len(b):
        return 0.0
    same = int(np.count_nonzero(np.frombuffer(a, np.uint8) == np.frombuffer(b, np.uint8)))
    return max(0.0, (same / len(a) - 1 / 256) / (1 - 1 / 256))


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """Share of the shorter body's shingles found in the longer one (estimated).

    Containment, not Jaccard: a syndicated copy trimmed to 60 % with a new header
    has Jaccard ~0.5 but containment ~0.85, while different stories on one subject
    stay under ~0.3 either way. Beyond a MAX_SIZE_RATIO size ratio the estimate is
    too noisy and plain Jaccard is returned. The Redis script computes the same.
    """
    if a.signature is None or b.signature is None:
        return 0.0
    return containment(estimate_jaccard(a.signature, b.signature), a.shingles, b.shingles)


def containment(jaccard: float, size_a: int, size_b: int) -> float:
    small, large = min(size_a, size_b), max(size_a, size_b)
    if small <= 0 or large > MAX_SIZE_RATIO * small:
        return jaccard
    return min(1.0, jaccard / (1 + jaccard) * (small + large) / small)


_LUA = r"""
local prefix, gen, ngens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local expire_at, threshold, window = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local maxcand, maxratio, nitems = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local pos, out = 10, {}
local xkeys, bkeys = {}, {}  -- key prefixes of the live buckets, oldest first
for g = gen - ngens + 1, gen do
  xkeys[#xkeys + 1] = prefix .. 'x:' .. g .. ':'
  bkeys[#bkeys + 1] = prefix .. 'b:' .. g .. ':'
end

local function record(seq)
  local rec = redis.call('GET', prefix .. 'd:' .. seq)
  if not rec then return nil end
  local a = string.find(rec, '\n', 1, true)
  local b = string.find(rec, '\n', a + 1, true)
  local c = string.find(rec, '\n', b + 1, true)
  local d = string.find(rec, '\n', c + 1, true)
  local aid = string.sub(rec, a + 1, b - 1)
  local story = string.sub(rec, b + 1, c - 1)
  if story == '' then story = aid end
  return {ts = tonumber(string.sub(rec, 1, a - 1)), aid = aid, story = story,
          size = tonumber(string.sub(rec, c + 1, d - 1)), sig = string.sub(rec, d + 1)}
end

local function similarity(x, size, rec)
  if #rec.sig ~= #x or #x == 0 then return 0 end
  local y, same = {string.byte(rec.sig, 1, #x)}, 0
  for i = 1, #x do if x[i] == y[i] then same = same + 1 end end
  local j = (same / #x - 1 / 256) / (1 - 1 / 256)
  if j < 0 then return 0 end
  local small, large = math.min(size, rec.size), math.max(size, rec.size)
  if small <= 0 or large > maxratio * small then return j end
  return math.min(1, j / (1 + j) * (small + large) / small)
end

local function put(keys, bucket, field, seq)
  local key = keys[ngens] .. bucket
  redis.call('HSETNX', key, field, seq)
  redis.call('EXPIREAT', key, expire_at)
end

for _ = 1, nitems do
  local aid, ts, nex = ARGV[pos], tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
  local ex, found = {}, nil
  pos = pos + 3
  for i = 1, nex do
    local bucket, field = ARGV[pos], ARGV[pos + 1]
    pos = pos + 2
    local seq = nil
    for g = 1, ngens do
      seq = redis.call('HGET', xkeys[g] .. bucket, field)
      if seq then break end
    end
    if seq and not found then found = record(seq) ; if found then found.seq = seq end end
    if not seq then ex[#ex + 1] = {bucket, field} end
  end
  local sig, size, nb = ARGV[pos], tonumber(ARGV[pos + 1]), tonumber(ARGV[pos + 2])
  pos = pos + 3
  local bands = {}
  for i = 1, nb do bands[i] = {ARGV[pos], ARGV[pos + 1]} ; pos = pos + 2 end
  if found then
    for _, e in ipairs(ex) do put(xkeys, e[1], e[2], found.seq) end
    out[#out + 1] = {'exact', found.story, found.aid, '1'}
  else
    local best, bestsim = nil, -1
    if nb > 0 then
      local counts, order = {}, {}
      for _, band in ipairs(bands) do
        for g = 1, ngens do
          local seq = redis.call('HGET', bkeys[g] .. band[1], band[2])
          if seq then
            if not counts[seq] then order[#order + 1] = seq ; counts[seq] = 0 end
            counts[seq] = counts[seq] + 1
          end
        end
      end
      table.sort(order, function(p, q) return counts[p] > counts[q] end)
      local x = {string.byte(sig, 1, #sig)}
      for i = 1, math.min(#order, maxcand) do
        local rec = record(order[i])
        if rec and (window <= 0 or math.abs(rec.ts - ts) <= window) then
          local sim = similarity(x, size, rec)
          if sim >= threshold and sim > bestsim then best, bestsim = rec, sim end
        end
      end
    end
    local seq = redis.call('INCR', prefix .. 'seq')
    local story = ''
    if best then story = best.story end
    if story == aid then story = '' end
    local rec = ts .. '\n' .. aid .. '\n' .. story .. '\n' .. size .. '\n' .. sig
    redis.call('SET', prefix .. 'd:' .. seq, rec, 'EXAT', expire_at)
    for _, e in ipairs(ex) do put(xkeys, e[1], e[2], seq) end
    for _, band in ipairs(bands) do put(bkeys, band[1], band[2], seq) end
    if best then
      out[#out + 1] = {'near', best.story, best.aid, string.format('%.4f', bestsim)}
    else
      out[#out + 1] = {'new', aid, '', ''}
    end
  end
end
return out
"""


class Deduplicator:
    """Assigns batches of articles to stories against a windowed Redis index."""

    def __init__(self, redis: redis.Redis, *, prefix: str = "ingest:", window_days: int = 7,
                 threshold: float = 0.5, bucket_bits: int = 15, bucket_seconds: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
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
        args: list[str | bytes | int] = [self._prefix, gen, ngens, expire_at, repr(self._threshold),
                                         self._window, MAX_CANDIDATES, MAX_SIZE_RATIO, len(items)]
        for item in items:
            args += self._item_args(item, now)
        raw = self._script(args=args)
        results = [DedupResult(story_id=_text(story), kind=_text(kind), duplicate_of=_text(dup) or None,
                               similarity=float(sim) if sim else None)
                   for kind, story, dup, sim in raw]
        log.debug("dedup.assign", items=len(items), near=sum(r.kind == "near" for r in results),
                  exact=sum(r.kind == "exact" for r in results))
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
