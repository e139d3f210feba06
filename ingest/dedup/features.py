"""What story assignment compares besides the MinHash, without I/O.

- A fixed-rate sample of a body's shingles (`sample`): the shingles whose hash falls in the
  lowest 1/SAMPLE_RATE of the range, the SAMPLE_MAX lowest kept. Two samples estimate the share
  of the shorter body's shingles found in the longer one, at any length ratio (the MinHash
  estimate is too noisy beyond a few times the length): a brief of a long wire story joins it.
  The same sample keys the index that finds such candidates.
- The numbers and capitalised names a body states (`facts`): two templated texts (earnings
  reports of two companies) share most shingles and differ only there.
- Sentence keys (`sentence_keys`): a site's boilerplate ("About the company", forward-looking
  statements, media contacts) repeats sentence for sentence in its stories; the keys a domain
  has seen in many of its stories are dropped before the comparison (`ingest.dedup.index`
  counts them).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

SAMPLE_RATE = 8  # one shingle in 8 is sampled
SAMPLE_MAX = 128  # a body's record keeps its 128 lowest sampled shingles (bodies over ~1,000 words capped)
INDEX_MAX = 32  # of which the 32 lowest are index keys (what finds a candidate; as many as bands)
FACTS_MAX = 24  # numbers, and names, kept per body (lowest hashes)
SENTENCE_MIN_WORDS = 5  # shorter sentences ("Contact:", "###") are not counted as boilerplate

_RANK_LIMIT = (1 << 32) // SAMPLE_RATE
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_SENTENCES = re.compile(r"(?<=[.!?…。！？])\s+|\n+")
_PUNCTUATION = "\"'()[]{}<>.,;:!?…«»“”‘’„*-–—/|#@"
_ENDS = (*".!?…。！？", '."', ".”", "?”", "!”")  # tokens ending a sentence
_DIGIT = re.compile(r"\d")
_NOT_DIGITS = {c: None for c in map(ord, ".,:/")}


@dataclass(frozen=True)
class Sketch:
    """Sorted small hashes of a set; `capped`: only the lowest were kept (compare below the last)."""

    values: tuple[int, ...] = ()
    capped: bool = False


@dataclass(frozen=True)
class Sample:
    """A body's sampled shingles: 32-bit ranks (the record) and their full hashes (the index keys)."""

    ranks: Sketch = Sketch()
    keys: tuple[int, ...] = ()


def sample(shingles: np.ndarray) -> Sample:
    """The shingles whose top 32 bits are in the lowest 1/SAMPLE_RATE, at most SAMPLE_MAX of them."""
    ranks = shingles >> np.uint64(32)
    picked = shingles[ranks < np.uint64(_RANK_LIMIT)]
    picked = picked[np.argsort(picked >> np.uint64(32), kind="stable")]
    kept = picked[:SAMPLE_MAX]
    values = tuple(int(r) for r in (kept >> np.uint64(32)).tolist())
    return Sample(Sketch(values, len(picked) > SAMPLE_MAX), tuple(int(k) for k in kept[:INDEX_MAX].tolist()))


def _sketch(items: set[str]) -> Sketch:
    hashes = sorted({zlib.crc32(item.encode()) & 0xFFFF for item in items})
    return Sketch(tuple(hashes[:FACTS_MAX]), len(hashes) > FACTS_MAX)


def facts(text: str) -> tuple[Sketch, Sketch]:
    """The distinct numbers (separators removed) and the capitalised words found at least once
    past a sentence's first word and never written lower-case (names, mostly) of a body."""
    numbers = {m.translate(_NOT_DIGITS).lstrip("0") or "0" for m in _NUMBER.findall(text)}
    lower: set[str] = set()
    names: set[str] = set()
    for line in text.splitlines():
        start = True
        for raw in line.split():
            word = raw.strip(_PUNCTUATION)
            if word.islower():
                lower.add(word)
            elif not start and word[:1].isupper():
                names.add(word)
            start = raw.endswith(_ENDS)
    return _sketch(numbers), _sketch({w.casefold() for w in names if w.lower() not in lower})


def site(url: str | None) -> str:
    """The host a story's boilerplate is counted under ("" without one)."""
    host = urlsplit(url).hostname if url else None
    return (host or "").removeprefix("www.")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCES.split(text) if s.strip()]


def sentence_key(sentence: str) -> int | None:
    """63-bit key of a sentence, casefolded, digits as 0 (a year or a phone number changes),
    spaces collapsed; None for sentences under SENTENCE_MIN_WORDS words."""
    return _key(_DIGIT.sub("0", sentence.casefold()))


def _key(normalized: str) -> int | None:
    words = normalized.split()
    if len(words) < SENTENCE_MIN_WORDS:
        return None
    return int.from_bytes(hashlib.blake2b(" ".join(words).encode(), digest_size=8).digest(), "big") >> 1


def sentence_keys(text: str) -> tuple[int, ...]:
    """The distinct sentence keys of a body (what a domain's boilerplate counts are made of):
    `sentence_key` of each sentence, normalised once for the whole body."""
    normalized = sentences(_DIGIT.sub("0", text.casefold()))
    return tuple(dict.fromkeys(k for k in map(_key, normalized) if k is not None))


SAMPLE_MIN = 3  # sampled shingles of the shorter body found in the longer below which the sample says nothing
# Numbers decide when both bodies state at least NUMBERS_MIN (below the sketches' cut-offs): more
# than NUMBERS_MATCH of the smaller set must be shared. Else names, more loosely (a syndicated
# copy's title-cased headline and byline add some): NAMES_MIN each, more than NAMES_MATCH shared;
# else the two together, from FACTS_MIN. A dated byline ("Updated 14:32") adds numbers, so a few
# numbers alone do not decide. Chosen so that no syndicated copy of the near-duplicate benchmark
# that the MinHash rule found is lost to them.
NUMBERS_MIN, NUMBERS_MATCH = 4, 0.49
NAMES_MIN, NAMES_MATCH = 5, 0.25
FACTS_MIN = 5


def _cut(a: Sketch, b: Sketch) -> int:
    """Values of either sketch above this were not kept by both: they cannot be compared."""
    return min(
        a.values[-1] if a.capped and a.values else 1 << 40, b.values[-1] if b.capped and b.values else 1 << 40
    )


def contained(small: Sketch, large: Sketch) -> tuple[int, int]:
    """(found, compared): values of `small` found in `large`, among those below both cut-offs."""
    tau = _cut(small, large)
    pool = [v for v in small.values if v <= tau]
    within = set(large.values)
    return sum(v in within for v in pool), len(pool)


def overlap(a: Sketch, b: Sketch) -> tuple[int, int]:
    """(shared, the smaller set's size), below both cut-offs: the overlap coefficient's terms.
    A copy with a dated byline added, or a trimmed copy, still overlaps its original fully."""
    tau = _cut(a, b)
    mine, theirs = {v for v in a.values if v <= tau}, {v for v in b.values if v <= tau}
    return len(mine & theirs), min(len(mine), len(theirs))


def facts_agree(a: tuple[Sketch, Sketch], b: tuple[Sketch, Sketch]) -> bool:
    """The two bodies state mostly the same numbers (or, with fewer than NUMBERS_MIN numbers in
    either, names; or, with few of both, the two together): templated texts about different
    companies are not one story."""
    (num_shared, num_compared), (name_shared, name_compared) = overlap(a[0], b[0]), overlap(a[1], b[1])
    if num_compared >= NUMBERS_MIN:
        return num_shared > NUMBERS_MATCH * num_compared
    if name_compared >= NAMES_MIN:
        return name_shared > NAMES_MATCH * name_compared
    if num_compared + name_compared >= FACTS_MIN:
        return num_shared + name_shared > NAMES_MATCH * (num_compared + name_compared)
    return True
