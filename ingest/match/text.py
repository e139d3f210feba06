"""Normalization and tokenizing shared by queries and documents.

Queries and articles go through exactly the same functions, so whatever the
folding does (case, diacritics, hyphens, plurals) it does to both sides and a
term matches its own variants. Scripts written without spaces (Chinese,
Japanese, Korean, Thai...) are split into one token per character; a term in
those scripts is then matched as a character sequence.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Scripts written without word separators: every character is its own token.
_CHAR_SCRIPTS = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3005-\u3007\u3021-\u3029"  # iteration marks, Hangzhou numerals
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3130-\u318f\u31f0-\u31ff"  # Hangul compatibility Jamo, Katakana extension
    "\u3400-\u4dbf\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0003134f"  # CJK extensions B-G
)

_JOINERS = "\u200c\u200d\u00ad"  # ZWNJ, ZWJ, soft hyphen: inside words, removed when folding
_INNER = "\\-\u2010\u2011'\u2019"  # hyphens and apostrophes that join two word parts


def _mark_class() -> str:
    """Combining marks of the BMP as a regex class body (they are not `\\w` in `re`)."""
    ranges: list[tuple[int, int]] = []
    for cp in range(0x300, 0x10000):
        if unicodedata.category(chr(cp)).startswith("M"):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(re.escape(chr(a)) + ("-" + re.escape(chr(b)) if b > a else "") for a, b in ranges)


_L = f"[^\\W_{_CHAR_SCRIPTS}]"
_M = f"[{_mark_class()}{_JOINERS}]"
_PART = f"{_L}+(?:{_M}+{_L}*)*"
TOKEN_RE = re.compile(f"([{_CHAR_SCRIPTS}])|({_PART}(?:[{_INNER}]{_PART})*)")
# The same tokens without groups: `findall` returns plain strings (no tuple per token). A token is
# a space-less-script character exactly when it is one character of `_CHAR_SCRIPTS`: a word token
# starts with `_L`, which excludes them. `_L`, `_M` and `_INNER` share no character, so greedy
# repetition never gives a character back and possessive quantifiers (no backtracking state,
# ~15 % faster) find the same tokens; tests/test_match.py checks that the classes stay disjoint.
_FAST_PART = f"{_L}++(?:{_M}++{_L}*+)*+"
TOKENS_RE = re.compile(f"[{_CHAR_SCRIPTS}]|{_FAST_PART}(?:[{_INNER}]{_FAST_PART})*+")
CHAR_TOKEN_RE = re.compile(f"^[{_CHAR_SCRIPTS}]$")
HAS_CHAR_RE = re.compile(f"[{_CHAR_SCRIPTS}]")  # a text without a match has no character token
_TOKEN_CACHE_SIZE = 65_536  # bounds memory: ~10-20 MB per table at most

_STRIP_AFTER = re.compile("[\\-\u2010\u2011'\u2019\u02bc" + _JOINERS + "\u0640]")
_POSSESSIVE = re.compile("(?:['\u2019\u02bc]s?)$")
_ELISION = re.compile("^(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|dell|nell|dall|sull|all|un)['\u2019]")
_ARABIC_MARKS = {chr(c) for c in (*range(0x064B, 0x0660), 0x0670)}
_HEBREW_MARKS = {chr(c) for c in range(0x0591, 0x05C8)} - {"\u05be", "\u05c0", "\u05c3", "\u05c6"}
_LETTER_MAP = str.maketrans({"\u0649": "\u064a", "\u0629": "\u0647"})  # alef maksura, teh marbuta
_NO_PLURAL = frozenset(
    {
        "news",
        "series",
        "species",
        "means",
        "lens",
        "gas",
        "bus",
        "yes",
        "less",
        "thus",
        "plus",
        "always",
        "perhaps",
        "was",
        "has",
        "does",
        "this",
        "its",
        "his",
        "hers",
        "ours",
        "yours",
        "chaos",
        "atlas",
        "canvas",
    }
)
_SIBILANT_ES = ("sses", "shes", "ches", "xes", "zes")
_ASCII_WORD = re.compile("[a-z]+")


def _strips(base: str) -> bool:
    """Whether diacritics on this base letter are folded away (Latin, Greek, Cyrillic)."""
    return base < "\u0530" or "\u1e00" <= base < "\u2000"


def strip_marks(word: str) -> str:
    """Remove accents from Latin/Greek/Cyrillic letters and vowel marks from Arabic/Hebrew.

    `й` keeps its breve (a letter of its own); Japanese voicing marks are kept.
    """
    decomposed = unicodedata.normalize("NFKD", word)
    out: list[str] = []
    base = ""
    for ch in decomposed:
        if unicodedata.combining(ch):
            if ch in _ARABIC_MARKS or ch in _HEBREW_MARKS:
                continue
            if _strips(base) and not (ch == "\u0306" and "\u0400" <= base < "\u0530"):
                continue
        else:
            base = ch
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def fold_plural(word: str) -> str:
    """A light English plural folding (Harman's S-stemmer plus sibilant `-es`).

    Applied identically to queries and documents, so its mistakes cost little:
    `houses`/`house` and `ceasefires`/`ceasefire` meet; `news` is protected.
    """
    if len(word) < 4 or word in _NO_PLURAL or not word.endswith("s") or not _ASCII_WORD.fullmatch(word):
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith(_SIBILANT_ES):
        return word[:-2]
    if word.endswith(("ss", "us", "is")):
        return word
    return word[:-1]


@lru_cache(maxsize=65_536)
def normalize_word(word: str) -> tuple[str, str]:
    """(base, key) of one word token: base is case/diacritic/hyphen-folded, key also plural-folded.

    Possessives (`Armenia's`) and French/Italian elisions (`l'état`) are dropped first.

    Prefix wildcards look at the base (`countri*` finds `countries`); everything else uses the key.
    """
    text = _POSSESSIVE.sub("", word) if len(word) > 2 else word
    text = strip_marks(text.casefold()).translate(_LETTER_MAP)
    text = _ELISION.sub("", text) if len(text) > 2 else text
    base = _STRIP_AFTER.sub("", text)
    return base, fold_plural(base)


class _TokenTable(dict[str, tuple[str, str] | None]):
    """token -> (base, key) of a word token, None for a space-less-script character.

    A dict, so that `map(TOKEN_TABLE.__getitem__, tokens)` looks known tokens up without a Python
    call per token; a miss computes the entry (`__missing__`). Emptied when it reaches
    `_TOKEN_CACHE_SIZE` entries, so memory stays bounded however many distinct tokens pass.
    """

    def __missing__(self, token: str) -> tuple[str, str] | None:
        if len(self) >= _TOKEN_CACHE_SIZE:
            self.clear()
        value = None if len(token) == 1 and CHAR_TOKEN_RE.match(token) else normalize_word(token)
        self[token] = value
        return value


class _KeyTable(dict[str, str]):
    """token -> index key: the character itself in space-less scripts, else `normalize_word`'s key."""

    def __missing__(self, token: str) -> str:
        if len(self) >= _TOKEN_CACHE_SIZE:
            self.clear()
        pair = TOKEN_TABLE[token]
        value = token if pair is None else pair[1]
        self[token] = value
        return value


TOKEN_TABLE = _TokenTable()
KEY_TABLE = _KeyTable()


def token_keys(text: str) -> tuple[list[str], list[str]]:
    """(tokens, keys) of an already NFKC-normalized text: `TOKENS_RE` matches and their index keys."""
    tokens = TOKENS_RE.findall(text)
    return tokens, list(map(KEY_TABLE.__getitem__, tokens))


def tokenize(text: str) -> list[tuple[str, str]]:
    """(base, key) pairs of a text, in order; one pair per character in space-less scripts."""
    text = unicodedata.normalize("NFKC", text)
    out: list[tuple[str, str]] = []
    append = out.append
    for char, word in TOKEN_RE.findall(text):
        if char:
            append((char, char))
        else:
            append(normalize_word(word))
    return out


def is_char_token(token: str) -> bool:
    """True for a token of a space-less script (one character)."""
    return bool(CHAR_TOKEN_RE.match(token))
