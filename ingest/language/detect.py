"""Language identification: ISO 639-1 code plus confidence, or `und`.

Three steps, each only where the previous one is unsure:
1. py3langid (~0.1 ms on an article sample) answers when it is sure, the text
   is long and the language is not in a family it is known to confuse.
2. lingua in low-accuracy mode (trigram models of all 75 languages, preloaded,
   ~80 MB) ranks every language for short text, blended with py3langid's scores
   (`_Blend`); for long text only the likely ones (`long_candidates`: a third of
   the cost, the same answers on the test sentences and articles).
3. Short texts only (fewer than SHORT_CHARS letters: lingua's own cut-off, below
   which its high-accuracy mode differs from the low one at all), with
   `short_text_models` (INGEST_SHORT_TEXT_MODELS, on by default), when the blend of
   step 2 is less than BLEND_SURE confident: lingua's high-accuracy models (1- to
   5-grams) re-rank the blend's best HIGH_CANDIDATES (and the hint), again blended
   with py3langid (weight HIGH_FAST_WEIGHT). Those models are 1-82 MB per language,
   1.2 GB for all, and take 5-280 ms of CPU each to load, so `language_high` loads
   them lazily, for the blend's first two candidates only (the others count when
   loaded already), keeps a bounded set and caps loads per minute; when the first
   candidate cannot be loaded, the blend's answer stands.
Only a bounded sample of the text is looked at: the title and the first
paragraphs say as much as the whole article.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from lingua import Language, LanguageDetectorBuilder

from ingest.language.families import CONFUSABLE as _CONFUSABLE
from ingest.language.families import FAMILIES as _FAMILIES
from ingest.language.high import (
    HIGH_LOADS_PER_MINUTE,
    HIGH_MAX_LANGUAGES,
    HighAccuracy,
    LoadBudget,
    cached_detector,
    confidences,
)
from ingest.models import LanguageResult

UNDETERMINED = "und"
SAMPLE_CHARS = 600
FAST_SAMPLE_CHARS = 400  # py3langid reads this much of the sample: as sure on articles, 0.1 ms cheaper
FAST_TOP = 8  # py3langid's best languages kept for the candidate sets below
LONG_CANDIDATES = 5  # long text: lingua ranks py3langid's top-k, their families, the hint and the prior
FAST_MIN_PROB = 0.995  # py3langid (normalised) probability above which it is trusted
MIN_CONFIDENCE = 0.5  # below this lingua's best guess is "unsure"
DISAGREE_PROB = 0.6  # py3langid at least this sure of another family's language: mixed text
TIE_MARGIN = 0.15  # top two closer than this: a near-tie the hint may break, else `und`
SHORT_CHARS = 120  # fewer letters: high-accuracy models re-rank the candidates (lingua's own cut-off)
LONG_SAMPLE_CHARS = 480  # a sample this long has SHORT_CHARS letters unless it is mostly numbers: not counted
PRIOR_LANGUAGES = ("en",)  # long text: always a candidate, the commonest news language
# The blend's top-k languages the high-accuracy models re-rank, as long as their blend probability
# is at least HIGH_MIN_RATIO of the best's; the result is blended with py3langid ** HIGH_FAST_WEIGHT.
# Chosen on texts 31-130 of each lingua test file (word pairs: top 9 0.8865, top 7 0.8855, top 5
# 0.8837, lingua high alone 0.8849), for a third of the model loads of top 9.
HIGH_CANDIDATES = 7
HIGH_MIN_RATIO = 0.003
HIGH_FAST_WEIGHT = 0.25
# Short text: lingua low's confidence times py3langid's probability to this power (`_Blend`). Chosen
# on texts 31-130 of each lingua test file (1.3-2.0 scored alike), not on the first 30 the
# benchmark reports.
BLEND_WEIGHT = 1.5
BLEND_SURE = 0.99  # with short-text models: the blend's answer stands at this confidence (no models loaded)

_LINGUA_BY_CODE: dict[str, Language] = {lang.iso_code_639_1.name.lower(): lang for lang in Language.all()}
_FAST_TO_LINGUA = {"no": "nb"}  # py3langid's codes lingua spells differently
_ONLY_LINGUA = ("mi", "tn", "ts")  # lingua's languages py3langid lacks (a test keeps this list true)
UNSURE = LanguageResult(UNDETERMINED, 0.0)
_Fast = tuple[list[tuple[str, float]], np.ndarray]  # py3langid's best (code, probability) and all its scores
_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


def _models() -> tuple[Any, Any]:
    """Load both models once per process; every detector instance shares them."""
    with _LOCK:
        if not _MODELS:
            from py3langid.langid import _load_identifier

            _MODELS["fast"] = _load_identifier(norm_probs=True)
            _MODELS["lingua"] = (
                LanguageDetectorBuilder.from_all_languages()
                .with_low_accuracy_mode()
                .with_preloaded_language_models()
                .build()
            )
            _MODELS["high"] = HighAccuracy(HIGH_MAX_LANGUAGES)
            _MODELS["subsets"] = _Subsets()
            _MODELS["blend"] = _Blend(_MODELS["fast"])
    return _MODELS["fast"], _MODELS["lingua"]


def _fast_top(fast: Any, scores: np.ndarray, k: int) -> list[tuple[str, float]]:
    """py3langid's best k (code, normalised probability), lingua's spelling, of one scoring pass."""
    best = np.argsort(scores)[::-1][:k]
    return [(_FAST_TO_LINGUA.get(fast.nb_classes[i], fast.nb_classes[i]), float(scores[i])) for i in best]


class _Blend:
    """Short text: lingua low's confidence x py3langid's probability ** BLEND_WEIGHT, renormalised.

    The two models err on different texts (trigrams against byte n-grams of other training
    data), so their product is right more often than either: on the lingua test texts (first 30
    per file) sentences 0.931 -> 0.955 and word pairs 0.794 -> 0.848 against lingua low alone, at
    no cost (both already ran).
    A language py3langid lacks takes the probability of its closest relative it knows (so the
    two are told apart by lingua alone), else a uniform share.
    The high-accuracy ranking of step 3 is blended too, with a lighter weight (HIGH_FAST_WEIGHT):
    word pairs 0.885 -> 0.889 on texts 31-130 of each file, where it was chosen.
    """

    def __init__(self, fast: Any) -> None:
        self.codes = list(_LINGUA_BY_CODE)
        self._row = {code: i for i, code in enumerate(self.codes)}
        classes = [_FAST_TO_LINGUA.get(c, c) for c in fast.nb_classes]
        zero, uniform = len(classes), len(classes) + 1  # two extra columns: 0.0 and 1 / n
        rows = []
        for code in self.codes:
            own = [j for j, c in enumerate(classes) if c == code]
            kin = [j for j, c in enumerate(classes) if any(code in f and c in f for f in _FAMILIES)]
            rows.append(own or kin or [uniform])
        width = max(map(len, rows))
        self._columns = np.array([r + [zero] * (width - len(r)) for r in rows])
        self._extra = np.array([0.0, 1.0 / len(classes)])

    def rank(
        self, values: list[tuple[str, float]], scores: np.ndarray, weight: float = BLEND_WEIGHT
    ) -> list[tuple[str, float]]:
        """lingua's (code, confidence) `values` re-ranked with py3langid's `scores`, best first."""
        rows = self._columns[[self._row[code] for code, _ in values]]
        lingua = np.array([value for _, value in values])
        fast = np.concatenate([scores, self._extra])[rows].max(axis=1)
        z = np.log(np.maximum(lingua, 1e-6)) + weight * np.log(np.maximum(fast, 1e-6))
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p)
        return [(values[i][0], float(p[i])) for i in order]


class _Subsets:
    """lingua low-accuracy detectors over candidate sets, sharing the preloaded models (cached)."""

    def __init__(self) -> None:
        self._detectors: OrderedDict[frozenset[Language], Any] = OrderedDict()
        self._lock = threading.Lock()

    def rank(self, text: str, codes: frozenset[str]) -> list[tuple[str, float]]:
        with self._lock:
            key = frozenset(_LINGUA_BY_CODE[c] for c in codes)
            detector = cached_detector(self._detectors, key, low=True, cap=512)
        return confidences(detector.compute_language_confidence_values(text))


def long_candidates(fast_top: Sequence[tuple[str, float]], hint: str | None) -> frozenset[str]:
    """Languages lingua chooses among for long text: py3langid's best, their close relatives
    (the languages it confuses), the hint and the prior. lingua over 75 languages costs ~3 ms
    on an article sample; over these (6-20) about a third of that, with the same answer
    whenever py3langid's top LONG_CANDIDATES hold the language, as they do on articles.
    The languages py3langid does not know at all are always candidates."""
    codes = {code for code, _ in fast_top[:LONG_CANDIDATES]}
    for code, _ in fast_top[:2]:
        codes.update(c for family in _FAMILIES if code in family for c in family)
    codes.update(c for c in (hint, *PRIOR_LANGUAGES, *_ONLY_LINGUA) if c)
    return frozenset(c for c in codes if c in _LINGUA_BY_CODE)


def high_candidates(blended: Sequence[tuple[str, float]], hint: str | None) -> list[str]:
    """Languages the high-accuracy models re-rank: the blend's best HIGH_CANDIDATES, as long as
    they have at least HIGH_MIN_RATIO of the best one's probability, and the hint. The blend's
    best comes first."""
    floor = blended[0][1] * HIGH_MIN_RATIO
    picks = [code for code, value in blended[:HIGH_CANDIDATES] if value >= floor]
    if hint and hint not in picks:
        picks.append(hint)
    return picks


def high_accuracy_languages() -> list[str]:
    """Languages whose high-accuracy models are loaded now (the benchmark reports it)."""
    high = _MODELS.get("high")
    return high.loaded() if high else []


def high_accuracy_loads() -> int:
    """How many times a language's high-accuracy models were loaded (the benchmark reports it)."""
    high = _MODELS.get("high")
    return high.loads if high else 0


def is_short(snippet: str) -> bool:
    """Fewer than SHORT_CHARS letters, counted as lingua counts them (digits, punctuation and
    spaces do not count): where its high-accuracy mode uses 1- to 5-grams, not trigrams only."""
    if len(snippet) >= LONG_SAMPLE_CHARS:
        return False
    return len(snippet) < SHORT_CHARS or sum(map(str.isalpha, snippet)) < SHORT_CHARS


def _letters(text: str, enough: int) -> int:
    """Letters that carry language signal, counted up to `enough` (articles reach it at once);
    a CJK character counts double (it is a word, nearly)."""
    count = 0
    for ch in text:
        if ch.isalpha() or unicodedata.category(ch) in ("Mn", "Mc"):  # Indic vowel signs are marks
            count += 2 if unicodedata.east_asian_width(ch) == "W" else 1
            if count >= enough:
                break
    return count


def sample(text: str, limit: int = SAMPLE_CHARS) -> str:
    """The first `limit` characters, cut at a word boundary when there is one nearby."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", limit - 80, limit)
    return text[: cut if cut > 0 else limit]


def normalize_hint(hint: str | None) -> str | None:
    """`en-US`, `EN_gb`, `zh-Hans` -> `en`, `zh`; anything unknown -> None."""
    if not hint:
        return None
    code = hint.strip().replace("_", "-").split("-")[0].lower()
    if code == "no":
        code = "nb"
    return code if code in _LINGUA_BY_CODE else None


class LanguageDetector:
    """Detects the language of article text; thread-safe, models loaded once per process."""

    def __init__(
        self,
        *,
        min_chars: int = 20,
        abstain: bool = True,
        short_text_models: bool = True,
        loads_per_minute: float | None = HIGH_LOADS_PER_MINUTE,
    ) -> None:
        """`abstain=False` always answers with the best guess (evaluation against lingua's figures).
        `short_text_models=True` re-ranks short texts the blend is unsure of with the high-accuracy
        models (step 3): word pairs 0.848 -> 0.888-0.890 on the lingua test texts. A text can then wait
        for a language's models to load (5-280 ms, once, while they stay in the bounded set);
        `loads_per_minute` caps those loads (None: no cap, as in the evaluation)."""
        self.min_chars = min_chars
        self.abstain = abstain
        self.short_text_models = short_text_models
        self.load_budget = LoadBudget(loads_per_minute)
        self._fast, self._lingua = _models()
        self._high: HighAccuracy = _MODELS["high"]
        self._subsets: _Subsets = _MODELS["subsets"]
        self._blend: _Blend = _MODELS["blend"]

    def detect(self, text: str, hint: str | None = None) -> LanguageResult:
        """Best language of `text`; the hint (a declared language) only breaks near-ties."""
        snippet = sample(" ".join(text[: SAMPLE_CHARS * 2].split()))
        if _letters(snippet, self.min_chars) < self.min_chars:
            return UNSURE
        scores = self._fast._decide(sample(snippet, FAST_SAMPLE_CHARS))
        fast_top = _fast_top(self._fast, scores, FAST_TOP)
        code, prob = fast_top[0]
        short = is_short(snippet)
        if prob >= FAST_MIN_PROB and code in _LINGUA_BY_CODE and code not in _CONFUSABLE and not short:
            return LanguageResult(code, round(prob, 4))
        return self._careful(snippet, normalize_hint(hint), (fast_top, scores), short)

    def guess(self, text: str) -> LanguageResult:
        """The best guess even where `detect` abstains (too few letters still gives `und`)."""
        snippet = sample(" ".join(text[: SAMPLE_CHARS * 2].split()))
        if _letters(snippet, self.min_chars) < self.min_chars:
            return UNSURE
        scores = self._fast._decide(sample(snippet, FAST_SAMPLE_CHARS))
        ranked, _ = self._ranking(
            snippet, None, (_fast_top(self._fast, scores, FAST_TOP), scores), is_short(snippet)
        )
        return LanguageResult(ranked[0][0], round(ranked[0][1], 4)) if ranked else UNSURE

    def pair(self, text: str, first: str, second: str) -> float | None:
        """Probability of `first` against `second` alone: the high-accuracy models blended with
        py3langid (as step 3 ranks) or, when they cannot be loaded now, lingua's low-accuracy
        models blended as step 2 does (see `prior`); None for a language lingua lacks."""
        snippet = sample(" ".join(text[: SAMPLE_CHARS * 2].split()))
        if first not in _LINGUA_BY_CODE or second not in _LINGUA_BY_CODE or first == second:
            return None
        scores = self._fast._decide(sample(snippet, FAST_SAMPLE_CHARS))
        high = self._high.rank(snippet, [_LINGUA_BY_CODE[first], _LINGUA_BY_CODE[second]], self.load_budget)
        if high and len(high) == 2:
            return dict(self._blend.rank(high, scores, HIGH_FAST_WEIGHT)).get(first)
        low = self._subsets.rank(snippet, frozenset({first, second}))
        return dict(self._blend.rank(low, scores)).get(first, 0.0) if low else None

    def _ranking(
        self, snippet: str, hint: str | None, fast: _Fast, short: bool
    ) -> tuple[list[tuple[str, float]], tuple[str, float]]:
        """lingua's ranking (low accuracy: over every language for short text, blended with
        py3langid's, over the likely ones for long text; high accuracy over the blend's best for
        short text with `short_text_models`) and the low-accuracy best guess."""
        fast_top, scores = fast
        if short:
            ranked = confidences(self._lingua.compute_language_confidence_values(snippet))
        else:
            ranked = self._subsets.rank(snippet, long_candidates(fast_top, hint))
        if not ranked:
            return [], ("", 0.0)
        if not short:
            return ranked, ranked[0]
        blended = self._blend.rank(ranked, scores)
        if not self.short_text_models or blended[0][1] >= BLEND_SURE:
            return blended, ranked[0]
        picks = high_candidates(blended, hint)
        high = (
            self._high.rank(snippet, [_LINGUA_BY_CODE[c] for c in picks], self.load_budget)
            if len(picks) > 1
            else None
        )
        if not high:
            return blended, ranked[0]
        return self._blend.rank(high, scores, HIGH_FAST_WEIGHT), ranked[0]

    def _careful(self, snippet: str, hint: str | None, fast_scores: _Fast, short: bool) -> LanguageResult:
        """lingua's ranking; `und` when unsure, mixed or a near-tie the hint does not settle."""
        full, low_best = self._ranking(snippet, hint, fast_scores, short)
        fast = fast_scores[0][0]
        ranked = full[:3]
        if not ranked:
            return UNSURE
        (top, top_value), second_value = ranked[0], ranked[1][1] if len(ranked) > 1 else 0.0
        if not self.abstain:
            return LanguageResult(top, round(top_value, 4))
        if _disagree(fast, top) or _disagree(low_best, top):  # mixed text: only a hint settles it
            if hint in (fast[0], low_best[0], top):
                return LanguageResult(hint, round(top_value, 4))
            return UNSURE
        if hint and hint != top:
            hinted = next((value for code, value in ranked if code == hint), None)
            if hinted is not None and top_value - hinted < TIE_MARGIN:
                return LanguageResult(hint, round(hinted, 4))
        if (top_value < MIN_CONFIDENCE or top_value - second_value < TIE_MARGIN) and hint != top:
            return UNSURE
        return LanguageResult(top, round(top_value, 4))


def _disagree(fast: tuple[str, float], top: str) -> bool:
    """Both detectors fairly sure of languages from different families: the text is mixed."""
    code, prob = fast
    if prob < DISAGREE_PROB or code == top or code not in _LINGUA_BY_CODE:
        return False
    return not any(code in family and top in family for family in _FAMILIES)
