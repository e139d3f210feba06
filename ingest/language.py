"""Language identification: ISO 639-1 code plus confidence, or `und`.

Two detectors, because one is fast and the other is careful: py3langid
(~0.1 ms on an article sample) answers when it is sure and the language is not
in a family it is known to confuse; lingua (low-accuracy mode, models preloaded,
~1 ms) decides everything else. lingua's high-accuracy models would take more
than 1 GB once every language has been seen, which a worker cannot afford; on
article-length samples the low-accuracy mode is as accurate.
Only a bounded sample of the text is looked at: the title and the first
paragraphs say as much as the whole article.
"""

from __future__ import annotations

import threading
import unicodedata
from typing import Any

from lingua import Language, LanguageDetectorBuilder

from ingest.models import LanguageResult

UNDETERMINED = "und"
SAMPLE_CHARS = 600
FAST_MIN_PROB = 0.995  # py3langid (normalised) probability above which it is trusted
MIN_CONFIDENCE = 0.5  # below this lingua's best guess is "unsure"
DISAGREE_PROB = 0.6  # py3langid at least this sure of another family's language: mixed text
TIE_MARGIN = 0.15  # top two closer than this: a near-tie the hint may break, else `und`

# Languages py3langid mixes up with a neighbour lingua tells apart better.
_CONFUSABLE = frozenset({
    "bs", "hr", "sr", "sl", "mk", "bg",
    "da", "nb", "nn", "no", "sv",
    "id", "ms", "tl",
    "cs", "sk", "ca", "gl", "pt", "es", "it", "la",
    "be", "uk", "ru", "kk", "mn",
    "af", "nl", "ga", "cy",
    "zh", "ja", "ko", "fa", "ur", "ar",
    "st", "tn", "ts", "xh", "zu", "sn", "so", "sw", "yo", "lg", "mi",
})
# Close relatives the two detectors may split between without the text being mixed.
_FAMILIES: tuple[frozenset[str], ...] = tuple(frozenset(g) for g in (
    ("hr", "bs", "sr", "sl", "mk", "bg"), ("nb", "no", "nn", "da", "sv"), ("id", "ms", "tl"),
    ("cs", "sk"), ("es", "ca", "gl", "pt", "it", "la"), ("ru", "uk", "be", "bg", "mk", "sr", "kk", "mn"),
    ("nl", "af"), ("zh", "ja"), ("ar", "fa", "ur"), ("hi", "mr", "ne"),
    ("st", "tn", "ts", "xh", "zu", "sn", "sw", "lg", "nso"),
))
_LINGUA_BY_CODE: dict[str, Language] = {lang.iso_code_639_1.name.lower(): lang for lang in Language.all()}
UNSURE = LanguageResult(UNDETERMINED, 0.0)
_LOCK = threading.Lock()
_MODELS: dict[str, Any] = {}


def _models() -> tuple[Any, Any]:
    """Load both models once per process; every detector instance shares them."""
    with _LOCK:
        if not _MODELS:
            from py3langid.langid import _load_identifier

            _MODELS["fast"] = _load_identifier(norm_probs=True)
            _MODELS["lingua"] = (LanguageDetectorBuilder.from_all_languages()
                                 .with_low_accuracy_mode()
                                 .with_preloaded_language_models()
                                 .build())
    return _MODELS["fast"], _MODELS["lingua"]


def _letters(text: str) -> int:
    """Letters that carry language signal; a CJK character counts double (it is a word, nearly)."""
    count = 0
    for ch in text:
        if ch.isalpha() or unicodedata.category(ch) in ("Mn", "Mc"):  # Indic vowel signs are marks
            count += 2 if unicodedata.east_asian_width(ch) == "W" else 1
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

    def __init__(self, *, min_chars: int = 20) -> None:
        self.min_chars = min_chars
        self._fast, self._lingua = _models()

    def detect(self, text: str, hint: str | None = None) -> LanguageResult:
        """Best language of `text`; the hint (a declared language) only breaks near-ties."""
        snippet = sample(" ".join(text.split()))
        if _letters(snippet) < self.min_chars:
            return UNSURE
        code, prob = self._fast.classify(snippet)
        if prob >= FAST_MIN_PROB and code in _LINGUA_BY_CODE and code not in _CONFUSABLE:
            return LanguageResult(code, round(float(prob), 4))
        return self._careful(snippet, normalize_hint(hint), (code, float(prob)))

    def _careful(self, snippet: str, hint: str | None, fast: tuple[str, float]) -> LanguageResult:
        """lingua's ranking; `und` when unsure, mixed or a near-tie the hint does not settle."""
        values = self._lingua.compute_language_confidence_values(snippet)
        if not values:
            return UNSURE
        ranked = [(v.language.iso_code_639_1.name.lower(), v.value) for v in values[:3]]
        (top, top_value), second_value = ranked[0], ranked[1][1] if len(ranked) > 1 else 0.0
        if _disagree(fast, top):
            return LanguageResult(hint, round(top_value, 4)) if hint in (fast[0], top) else UNSURE
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
