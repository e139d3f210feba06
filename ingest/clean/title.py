"""Titles without the site name: "Story | Site", "Site - Story", "Story_Site".

A segment is cut only when it equals a known name (feed title, its parts or
first word, configured site names, the URL's site label), so a title that
merely contains a dash keeps it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from ingest.clean.html import normalize_space

# Separators between title and site name; a hyphen counts only with spaces around it.
# A colon counts only spaced (" : ") or full-width ("："), and only ever cuts a known name.
_SEPARATOR = re.compile(r"\s*(?:\||｜|–|—|»|›|::|_|·|•|：)\s*|\s+[-:]\s+")
_SECTION_SEPARATORS = ("|", "｜", "»", "›", "::", "·", "•")
_FEED_PARTS = re.compile(r"\s*(?:[|｜–—»›:：_·•]|\s-\s)\s*")
_PUNCT = re.compile(r"[\W_]+")
_PARENS = re.compile(r"[(（]([^()（）]{2,40})[)）]")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
_TLD = re.compile(r"\.(?:[a-z]{2,3}|co\.uk|com\.au|co\.jp|online|info|news)$", re.I)
_ARTICLES = ("www", "the", "der", "die", "das", "le", "la", "el", "il")
_SUFFIXES = ("com", "net", "org", "news", "online", "digital", "web", "オンライン", "デジタル")


def _fold(text: str) -> str:
    """Casefolded without diacritics: `Público` and `Publico` are one name."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _key(text: str) -> str:
    """Comparison form: casefolded, punctuation and spaces removed, leading `www`/`the` ignored."""
    key = _PUNCT.sub("", _fold(_TLD.sub("", text.strip())))
    for prefix in _ARTICLES:
        if key.startswith(prefix) and len(key) > len(prefix) + 2:
            key = key[len(prefix) :]
    return key


def _keys_of(segment: str) -> set[str]:
    """A segment's comparison forms: itself, and without a trailing `com`/`online`/... word."""
    key = _key(segment)
    keys = {key}
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix) + 2:
            keys.add(key[: -len(suffix)])
    return keys


def _is_name(segment: str, keys: set[str]) -> bool:
    return bool(_keys_of(segment) & keys)


def name_keys(feed_title: str | None, site_names: Iterable[str]) -> set[str]:
    """Every form a site's name takes in its titles."""
    names = [n for n in site_names if n]
    if feed_title:
        names.append(feed_title)
        names.extend(_FEED_PARTS.split(feed_title))
        names.extend(_PARENS.findall(feed_title))  # "Schweizer Radio und Fernsehen (SRF)"
        words = feed_title.split()
        if words and len(words[0]) >= 3:
            names.append(words[0])
    keys: set[str] = set()
    for name in names:
        keys |= _keys_of(name)
    keys.discard("")
    return keys


def _segments(title: str) -> tuple[list[str], list[str]]:
    """Title split at separators: the segments and the separators between them."""
    parts: list[str] = []
    seps: list[str] = []
    pos = 0
    for match in _SEPARATOR.finditer(title):
        if match.start() == 0 or match.end() == len(title):
            continue
        parts.append(title[pos : match.start()])
        seps.append(match.group(0).strip() or "-")
        pos = match.end()
    parts.append(title[pos:])
    return parts, seps


def _is_section(segment: str, rest: list[str]) -> bool:
    """A short segment beside the site name, shorter than the headline left over."""
    return len(segment.split()) <= 2 and len(segment) < max(len(p) for p in rest)


def _site_at_end(parts: list[str], keys: set[str]) -> int | None:
    """Index of the site-name segment that ends the title, behind at most a date and short sections.

    "Story | Europa | DW | 28.04.2023", "Story | NDR.de - Nachrichten - Land": the trail after
    the name goes with it when each of its segments is a date or one or two words.
    """
    for index in range(len(parts) - 1, 0, -1):
        if _is_name(parts[index], keys):
            return index
        if not (_DATE.match(parts[index].strip()) or len(parts[index].split()) <= 2):
            return None
        if len(parts) - index > 3:
            return None
    return None


def strip_site_name(title: str, keys: set[str]) -> str:
    """Cut a site-name segment (and a section trail beside it) off either end of the title."""
    parts, seps = _segments(title)
    if len(parts) < 2 or not keys:
        return title
    end = _site_at_end(parts, keys)
    if end is not None:
        parts, seps = parts[:end], seps[: end - 1] if end > 0 else []
        while len(parts) > 1 and _is_name(parts[-1], keys):
            parts, seps = parts[:-1], seps[:-1]  # "Story – Israel Nachrichten – Chadashoth Israel"
        while len(parts) > 1 and seps[-1] in _SECTION_SEPARATORS and _is_section(parts[-1], parts[:-1]):
            parts, seps = parts[:-1], seps[:-1]  # "Story | World | Site": the section goes too
    elif _is_name(parts[0], keys):
        parts, seps = parts[1:], seps[1:]
        while len(parts) > 1 and seps[0] in _SECTION_SEPARATORS and _is_section(parts[0], parts[1:]):
            parts, seps = parts[1:], seps[1:]
    else:
        return title
    rebuilt = parts[0]
    for sep, part in zip(seps, parts[1:], strict=True):
        rebuilt += f" {sep} {part}" if sep != "_" else f"_{part}"
    return rebuilt.strip() or title


def fix_with_original(title: str, original_title: str | None) -> str:
    """An "Original title:" line wins when the raw title is it plus a suffix after a separator."""
    if not original_title:
        return title
    original = normalize_space(original_title)
    if title.casefold() == original.casefold():
        return original
    if title.casefold().startswith(original.casefold()):
        rest = title[len(original) :]
        match = _SEPARATOR.match(rest)
        if match and match.start() == 0 and match.end() > 0:
            return original
    return title


def clean_title(
    title: str,
    *,
    feed_title: str | None = None,
    original_title: str | None = None,
    site_names: Sequence[str] = (),
) -> str:
    """The headline without site name or section trail; never empty if the input was not."""
    raw = normalize_space(title)
    fixed = fix_with_original(raw, original_title)
    if fixed != raw:
        return fixed
    return strip_site_name(raw, name_keys(feed_title, site_names))
