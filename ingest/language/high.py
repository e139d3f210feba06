"""lingua's high-accuracy models for short text, within a memory and a load budget.

All 75 languages' 1- to 5-gram models take 1.2 GB and 5-280 ms of CPU each to load, so they are
loaded lazily, for the candidates of one text only, and unloaded least recently used first.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from lingua import Language, LanguageDetectorBuilder

HIGH_MAX_LANGUAGES = 16  # high-accuracy language models kept loaded at once (1-82 MB each)
HIGH_LOADS_PER_MINUTE = 12.0  # loads (0.1-0.3 s CPU each, eviction included) after the first 16
# ... and fewer while loading would take the process's resident memory above HIGH_RSS_BUDGET_MB,
# counting HIGH_LOAD_MB per language to load: the largest keep 50-82 MB and pass 120-131 MB while
# they load, so a worker that starts near 250 MB peaks under 500 MB.
HIGH_RSS_BUDGET_MB = 440
HIGH_LOAD_MB = 80
# Of a text's candidates, only the first this many are loaded when missing; the others count when
# loaded already. Loaded languages are those of recent texts: a prior that costs nothing. On texts
# 31-130 of each lingua test file, word pairs in file order 0.886 (2), 0.888 (1), 0.886 (all 7)
# with 10, 5 and 31 loads per 100 texts; shuffled 0.875, 0.852, 0.886 with 44, 22, 82 loads.
HIGH_LOAD_FIRST = 2

_PAGE_SIZE = 4096
with contextlib.suppress(AttributeError, ValueError, OSError):
    _PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class HighAccuracy:
    """lingua high-accuracy detectors over small candidate sets; models loaded lazily, LRU-bounded."""

    def __init__(self, max_languages: int) -> None:
        self.max_languages = max_languages
        self._loaded: OrderedDict[Language, None] = OrderedDict()
        self._detectors: OrderedDict[frozenset[Language], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # languages whose models were (re)loaded: the benchmark separates that cost

    def rank(
        self, text: str, candidates: Sequence[Language], budget: LoadBudget
    ) -> list[tuple[str, float]] | None:
        """(code, confidence) of the candidates, best first, from the 1- to 5-gram models. Only
        the first HIGH_LOAD_FIRST candidates are loaded when missing (budget allowing); the others
        count only if loaded already. None if the first is not loaded, or fewer than two are: the
        caller's ranking stands."""
        with self._lock:
            fresh = [lang for lang in candidates[:HIGH_LOAD_FIRST] if lang not in self._loaded]
            if fresh and not budget.take(len(fresh)):
                fresh = []
            usable = [lang for lang in candidates if lang in self._loaded or lang in fresh]
            if len(usable) < 2 or usable[0] != candidates[0]:
                return None
            key = frozenset(usable)
            if fresh:
                self._make_room(key, len(fresh))
                self.loads += len(fresh)
            for lang in usable:  # lingua loads the fresh ones lazily, below
                self._loaded[lang] = None
                self._loaded.move_to_end(lang)
            detector = cached_detector(self._detectors, key, low=False, cap=256)
            values = detector.compute_language_confidence_values(text)
        return confidences(values)

    def _make_room(self, keep: frozenset[Language], fresh: int) -> None:
        """Before loading `fresh` more languages: unload the least recently used ones (never those
        in `keep`) while the cap would be passed or loading would take the process's resident
        memory over HIGH_RSS_BUDGET_MB. lingua unloads every n-gram order of a language, its
        trigrams too, which the preloaded low-accuracy detector then reloads on its next text
        (10-25 ms): an eviction costs that on top of the next load, and the benchmark counts it."""
        while (
            len(self._loaded) + fresh > self.max_languages
            or _rss_mb() + fresh * HIGH_LOAD_MB > HIGH_RSS_BUDGET_MB
        ):
            lang = next((x for x in self._loaded if x not in keep), None)
            if lang is None:
                return
            del self._loaded[lang]
            LanguageDetectorBuilder.from_languages(lang).build().unload_language_models()  # type: ignore[no-untyped-call]
            for key in [k for k in self._detectors if lang in k]:
                del self._detectors[key]
            _release_memory()

    def loaded(self) -> list[str]:
        return [lang.iso_code_639_1.name.lower() for lang in self._loaded]


class LoadBudget:
    """A token bucket of model loads: `burst` at once, then `per_minute` (None: unlimited). It
    bounds the CPU a stream of short texts in ever new languages can spend loading models."""

    def __init__(self, per_minute: float | None, burst: int = HIGH_MAX_LANGUAGES) -> None:
        self.per_minute, self.burst = per_minute, burst
        self._tokens, self._at = float(burst), time.monotonic()

    def take(self, n: int) -> bool:
        if self.per_minute is None:
            return True
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_minute / 60)
        self._at = now
        if self._tokens < n:
            return False
        self._tokens -= n
        return True


def _rss_mb() -> float:
    """Resident set size of this process in MB, from /proc (0 where there is none)."""
    with contextlib.suppress(OSError), open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * _PAGE_SIZE / 2**20
    return 0.0


def _release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise, and RSS only grows)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def cached_detector(
    cache: OrderedDict[frozenset[Language], Any], languages: frozenset[Language], *, low: bool, cap: int
) -> Any:
    """A lingua detector over `languages`, from an LRU of at most `cap`: the models are shared by
    every detector, so one costs ~0.1 ms to build, but candidate sets repeat."""
    detector = cache.get(languages)
    if detector is None:
        builder = LanguageDetectorBuilder.from_languages(*languages)
        detector = (builder.with_low_accuracy_mode() if low else builder).build()
        cache[languages] = detector
        if len(cache) > cap:
            cache.popitem(last=False)
    cache.move_to_end(languages)
    return detector


def confidences(values: Any) -> list[tuple[str, float]]:
    """(ISO 639-1 code, confidence) pairs of lingua's confidence values, best first."""
    return [(v.language.iso_code_639_1.name.lower(), v.value) for v in values]
