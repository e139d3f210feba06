"""Fingerprints of article bodies: exact hashes and MinHash/LSH signatures, without I/O.

Exact: the canonical URL or the sha256 of the normalized body was seen before.
Near: MinHash over word 3-shingles (character 4-grams for CJK/Thai script),
LSH with 32 bands of 2 rows (a pair at Jaccard 0.3 shares a band with
probability 0.95, at 0.5 with 0.9999; a trimmed copy with a new header can sit
near 0.35), verified by the similarity estimated from 128 one-byte ("b-bit")
minhash values: containment of the shorter body in the longer (see `similarity`).
Bodies of very different lengths (a brief and its wire story) are compared by a
fixed-rate sample of their shingles instead, and two bodies that state different
numbers (or names) are never one story (`ingest.dedup.features`; the whole rule:
`story_similarity`). A site's boilerplate sentences are left out first.

Memory stays bounded and cost per article flat because every index entry lives
in a time bucket (one bucket per `bucket_seconds`, by default the whole window)
that expires `window_days` after the bucket ends; lookups read the live buckets
(two with the default), so the cost per article does not grow with the corpus;
the price is that the index holds up to twice the window's articles. Band and
exact entries are hash fields spread over many small Redis hashes
(listpack-encoded, ~11 bytes an entry) that map to a per-index sequence number;
each indexed article has one small record (ids, time, signature).
The index that keeps them and assigns stories is `ingest.dedup.index` (Redis).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit

import numpy as np

from ingest.dedup.features import (
    SAMPLE_MIN,
    Sample,
    Sketch,
    contained,
    facts,
    facts_agree,
    sample,
    sentence_key,
    sentences,
)

NUM_PERM = 128
BANDS = 32
ROWS = 2
MIN_WORDS = 30  # shorter bodies get exact dedup only
MIN_EXACT_TOKENS = 5  # shorter bodies ("Read more") never count as identical bodies
MAX_SIZE_RATIO = 4  # MinHash containment only up to this length ratio (the sample goes further)
MAX_CANDIDATES = 8  # LSH candidates verified per article, most shared bands first

_rng = np.random.default_rng(0x5EED_D3D0)
_PERM_A = _rng.integers(1, 1 << 63, NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_PERM_B = _rng.integers(0, 1 << 63, NUM_PERM, dtype=np.uint64)
_BAND_MUL = _rng.integers(1, 1 << 63, ROWS + 1, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_SH1, _SH2, _SH3, _SH4 = (
    np.uint64(c) for c in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xFF51AFD7ED558CCD)
)

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
    sample: Sample = field(default_factory=Sample)  # fixed-rate shingle sample: containment, any length
    numbers: Sketch = field(default_factory=Sketch)  # the numbers the body states
    names: Sketch = field(default_factory=Sketch)  # its capitalised words past a sentence's first
    boilerplate: int = 0  # sentences left out as the site's boilerplate


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
    query = urlencode(
        sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k))
    )
    path = parts.path.rstrip("/")
    return f"{host}{port}{path}" + (f"?{query}" if query else "")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads combined hashes over all 64 bits."""
    x = (x ^ (x >> np.uint64(30))) * _SH2
    x = (x ^ (x >> np.uint64(27))) * _SH4
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed


def _shingles(tokens: list[str], size: int) -> np.ndarray:
    """Distinct 64-bit hashes of `size`-token shingles."""
    words = np.fromiter(map(_TOKEN_HASHES.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
    n = len(tokens) - size + 1
    acc = words[:n] * _SH1
    for i, mul in enumerate((_SH2, _SH3, _SH4)[: size - 1], start=1):
        acc = acc + words[i : i + n] * mul + np.uint64(i)
    unique: np.ndarray = np.unique(_mix(acc))
    return unique


def _minhash(shingles: np.ndarray) -> np.ndarray:
    """NUM_PERM minimum values of multiply-add hash permutations."""
    with np.errstate(over="ignore"):
        hashed = np.multiply(_PERM_A[:, None], shingles[None, :])
        hashed += _PERM_B[:, None]
        minimum: np.ndarray = hashed.min(axis=1)
        return minimum


def _bands(mins: np.ndarray) -> tuple[int, ...]:
    rows = mins[: BANDS * ROWS].reshape(BANDS, ROWS)
    acc = np.arange(BANDS, dtype=np.uint64) * _BAND_MUL[ROWS]
    for r in range(ROWS):
        acc = acc + rows[:, r] * _BAND_MUL[r]
    return tuple(_mix(acc).tolist())


def fingerprint(text: str, url: str | None, boilerplate: frozenset[int] = frozenset()) -> Fingerprint:
    """Hash, canonical URL and MinHash/LSH signature of one article body.

    `boilerplate`: sentence keys (`features.sentence_key`) the body's site repeats in many of
    its stories; they are left out of everything but the content hash, unless fewer than
    MIN_WORDS words would be left (a republished story is not its own boilerplate)."""
    words_list = _WORD.findall(text.casefold())
    norm = " ".join(words_list)  # normalize(text)
    content_hash = hashlib.sha256(norm.encode()).hexdigest()
    dropped = 0
    if boilerplate:
        parts = sentences(text)
        kept = [s for s in parts if sentence_key(s) not in boilerplate]
        rest_words = _WORD.findall(" ".join(kept).casefold())
        if MIN_WORDS <= len(rest_words) < len(words_list):
            text, words_list, norm = " ".join(kept), rest_words, " ".join(rest_words)
            dropped = len(parts) - len(kept)
    chars = len(_CHAR_TOKEN.findall(norm))
    tokens = _TOKEN.findall(norm) if chars else words_list  # words_list == norm.split()
    words = len(tokens) - chars + chars // 2
    if words < MIN_WORDS:
        return Fingerprint(content_hash, canonical_url(url), None, (), words)
    size = 4 if chars * 2 > len(tokens) else 3
    shingles = _shingles(tokens, size)
    mins = _minhash(shingles)
    signature = ((mins >> np.uint64(32)) & np.uint64(0xFF)).astype(np.uint8).tobytes()
    numbers, names = facts(text)
    return Fingerprint(
        content_hash,
        canonical_url(url),
        signature,
        _bands(mins),
        words,
        len(shingles),
        sample(shingles),
        numbers,
        names,
        dropped,
    )


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
    too noisy and plain Jaccard is returned; there the shingle sample decides
    (`story_similarity`). The Redis script computes the same.
    """
    if a.signature is None or b.signature is None:
        return 0.0
    return containment(estimate_jaccard(a.signature, b.signature), a.shingles, b.shingles)


def story_similarity(a: Fingerprint, b: Fingerprint) -> float:
    """What the Redis script compares, for the benchmarks and tests: the MinHash estimate or,
    higher, the share of the shorter body's sampled shingles in the longer's (a brief in its
    wire story); 0 when the two state different numbers (or names)."""
    if a.signature is None or b.signature is None:
        return 0.0
    small, large = (a, b) if a.shingles <= b.shingles else (b, a)
    sim = similarity(a, b)
    found, compared = contained(small.sample.ranks, large.sample.ranks)
    if found >= SAMPLE_MIN:
        sim = max(sim, found / compared)
    return sim if facts_agree((small.numbers, small.names), (large.numbers, large.names)) else 0.0


def containment(jaccard: float, size_a: int, size_b: int) -> float:
    small, large = min(size_a, size_b), max(size_a, size_b)
    if small <= 0 or large > MAX_SIZE_RATIO * small:
        return jaccard
    return min(1.0, jaccard / (1 + jaccard) * (small + large) / small)
