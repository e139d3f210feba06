"""Titles as a reader sees them: markup and entities gone, without the site's name.

A segment after a separator is cut only when it names the site: og:site_name, the feed title,
configured names, the registrable domain's label, or the suffix most titles of the feed share
(learnt by the parse stage from the whole document). When the feed's titles show they carry no
common suffix, nothing is cut: "Kaartverkoop FC Twente - FC Utrecht" keeps its end even in FC
Utrecht's own feed. A title that merely contains a dash keeps it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from ingest.clean.html import looks_like_html, markup_text, normalize_space

# Separators between title and site name; a hyphen counts only with spaces around it.
# A colon counts only spaced (" : ") or full-width ("："), and only ever cuts a known name.
_SEPARATOR = re.compile(r"\s*(?:\||｜|ㅣ|–|—|»|›|::|_|·|•|：)\s*|\s+[-:*]\s+")
_SECTION_SEPARATORS = ("|", "｜", "ㅣ", "»", "›", "::", "·", "•", "*")
_BYLINE = re.compile(r"^(?:by|von|par|por|di|door|av|af)\s+\S+(?:\s+\S+){0,3}$", re.IGNORECASE)
_FEED_PARTS = re.compile(r"\s*(?:[|｜–—»›:：_·•]|\s-\s)\s*")
_PUNCT = re.compile(r"[\W_]+")
_PARENS = re.compile(r"[(（]([^()（）]{2,40})[)）]")
_DATE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
_TLD = re.compile(r"\.(?:[a-z]{2,3}|co\.uk|com\.au|co\.jp|online|info|news)$", re.I)
_CUT_END = re.compile(r"\s*(?:\.\.\.|…)$")
_ARTICLES = ("www", "the", "der", "die", "das", "le", "la", "el", "il")
_SUFFIXES = ("com", "net", "org", "news", "online", "digital", "web", "オンライン", "デジタル")
MIN_CONTAINED_KEY = (
    5  # a name this long also matches inside a short segment ("BBC中文网", "Ultima Hora Mallorca")
)
MAX_NAME_WORDS = 5  # ... of at most this many words
MAX_SECTION_WORDS = 3  # "| Latest News | Breaking News UK | Daily Star": sections before a site name
MAX_CHANNEL_CHARS = 12  # "标题_搜狐", "Story_Nakka": a short last segment after "_" is the site or channel
MIN_TITLES_TO_LEARN = 4  # fewer titles say nothing about a feed's convention
LEARN_SHARE = 0.5  # a suffix on at least half the titles (and 3) is the feed's own
MAX_UNESCAPES = 3


def title_text(raw: str) -> str:
    """Entities decoded (twice-escaped too), tags removed: `Principal&amp;#8217;s` -> `Principal’s`."""
    value = raw
    for _ in range(MAX_UNESCAPES):
        unescaped = html.unescape(value)
        if unescaped == value:
            break
        value = unescaped
    if looks_like_html(value):
        value = markup_text(value)
    return normalize_space(value)


def _fold(text: str) -> str:
    """Casefolded without diacritics: `Público` and `Publico` are one name."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=8192)
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
    """A known name, or a short segment that starts or ends with one ("NTV Haber", "BBC中文网").

    Inside a segment a name must cover whole words, or be followed by non-Latin script, or be
    long (at least MIN_CONTAINED_KEY characters), so a short name never matches inside a word.
    """
    if _keys_of(segment) & keys:
        return True
    words = segment.split()
    if len(words) > MAX_NAME_WORDS:
        return False
    for n in range(1, len(words)):
        if _keys_of(" ".join(words[:n])) & keys or _keys_of(" ".join(words[n:])) & keys:
            return True
    key = _key(segment)
    for name in keys:
        if len(name) >= MIN_CONTAINED_KEY and (key.startswith(name) or key.endswith(name)):
            return True
        if len(name) >= 2 and key.startswith(name) and not key[len(name)].isascii():
            return True
    return False


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


def _rebuild(parts: list[str], seps: list[str]) -> str:
    rebuilt = parts[0]
    for sep, part in zip(seps, parts[1:], strict=True):
        rebuilt += f" {sep} {part}" if sep != "_" else f"_{part}"
    return rebuilt.strip()


def _is_section(segment: str, rest: list[str], sep: str) -> bool:
    """A short segment beside the site name, shorter than the headline left over.

    Behind a bar or guillemet up to three words ("| Breaking News UK"); behind a dash only one
    ("- Panorama", "- Sport"), so "Kaartverkoop FC Twente - FC Utrecht - Site" keeps "FC Utrecht".
    """
    words = segment.split()
    longest = max(len(p) for p in rest)
    if sep in _SECTION_SEPARATORS:
        return len(words) <= MAX_SECTION_WORDS and len(segment) < longest
    return len(words) == 1 and segment.isalpha() and len(segment) < longest


def _site_at_end(parts: list[str], keys: set[str]) -> int | None:
    """Index of the site-name segment that ends the title, behind at most a date and short sections.

    "Story | Europa | DW | 28.04.2023", "Story | NDR.de - Nachrichten - Land": the trail after
    the name goes with it when each of its segments is a date or one or two words.
    """
    for index in range(len(parts) - 1, 0, -1):
        if _is_name(parts[index], keys):
            return index
        trail = parts[index].strip()
        if not (_DATE.match(trail) or _BYLINE.match(trail) or len(trail.split()) <= 2):
            return None
        if len(parts) - index > 3:
            return None
    return None


def _drop_sections(parts: list[str], seps: list[str]) -> tuple[list[str], list[str]]:
    """The section trail left before a site name that was cut: "Story | World | Site"."""
    while len(parts) > 1 and _is_section(parts[-1], parts[:-1], seps[-1]):
        parts, seps = parts[:-1], seps[:-1]
    return parts, seps


def strip_site_name(title: str, keys: set[str], *, prefix: bool = True) -> str:
    """Cut a site-name segment (and a section trail beside it) off the end, or (`prefix`) the start."""
    parts, seps = _segments(title)
    if len(parts) < 2 or not keys:
        return title
    end = _site_at_end(parts, keys)
    if end is not None:
        parts, seps = parts[:end], seps[: end - 1]
        while len(parts) > 1 and _is_name(parts[-1], keys):
            parts, seps = parts[:-1], seps[:-1]  # "Story – Israel Nachrichten – Chadashoth Israel"
        parts, seps = _drop_sections(parts, seps)
    elif prefix and _is_name(parts[0], keys):
        parts, seps = parts[1:], seps[1:]
        while len(parts) > 1 and seps[0] in _SECTION_SEPARATORS and _is_section(parts[0], parts[1:], seps[0]):
            parts, seps = parts[1:], seps[1:]
    else:
        return title
    return _rebuild(parts, seps) or title


def strip_channel(title: str) -> str:
    """ "标题_频道_搜狐": short segments after underscores are channel and site names, a CMS template."""
    parts, seps = _segments(title)
    if len(parts) < 2 or seps[-1] != "_":
        return title
    while len(parts) > 1 and seps[-1] == "_" and len(parts[-1].strip()) <= MAX_CHANNEL_CHARS:
        parts, seps = parts[:-1], seps[:-1]
    return _rebuild(parts, seps) or title


def _fold_space(text: str) -> str:
    return " ".join(_fold(text).split())


def learn_suffix(titles: Sequence[str]) -> str | None:
    """The last segment most of a feed's titles share: "" when they share none, None when too few to tell."""
    texts = [t for t in (title_text(raw) for raw in titles) if t]
    if len(texts) < MIN_TITLES_TO_LEARN:
        return None
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for text in texts:
        parts, _ = _segments(text)
        if len(parts) >= 2 and parts[-1].strip():
            folded = _fold_space(parts[-1])
            counts[folded] += 1
            shown.setdefault(folded, parts[-1].strip())
    if not counts:
        return ""
    folded, count = counts.most_common(1)[0]
    return shown[folded] if count >= max(3, LEARN_SHARE * len(texts)) else ""


def strip_learnt_suffix(title: str, suffix: str) -> str:
    """Cut the feed's own suffix (and a section trail before it) when this title carries it."""
    parts, seps = _segments(title)
    if len(parts) < 2 or _fold_space(parts[-1]) != _fold_space(suffix):
        return title
    parts, seps = _drop_sections(parts[:-1], seps[:-1])
    return _rebuild(parts, seps) or title


def _compact(text: str) -> str:
    return "".join(_fold(text).split())


def _cut_form_of(title: str, original: str) -> bool:
    """The original, cut short (a trailing "..." allowed) and/or with a suffix behind a separator."""
    target = _compact(original)
    heads = [title] + [title[: m.start()] for m in _SEPARATOR.finditer(title) if m.start() > 0]
    for head in heads:
        key = _compact(_CUT_END.sub("", head))
        if key == target or (key and target.startswith(key) and len(key) >= 0.5 * len(target)):
            return True
    return False


def fix_with_original(title: str, original_title: str | None) -> str:
    """An "Original title: X" line wins when the page title is X cut short or X plus a suffix."""
    if not original_title:
        return title
    original = normalize_space(original_title)
    return original if _cut_form_of(title, original) else title


def clean_title(
    title: str,
    *,
    feed_title: str | None = None,
    original_title: str | None = None,
    site_names: Sequence[str] = (),
    learnt_suffix: str | None = None,
    prefix: bool = True,
) -> str:
    """The headline without site name or section trail; never empty if the input was not.

    `prefix=False` (feed entries) cuts names at the end only: "Taverncast - Murloc Contest
    Winners - 8/26/06" in the Taverncast feed is a title, not a site name and its story.
    """
    raw = title_text(title)
    if original_title:
        fixed = fix_with_original(raw, title_text(original_title))
        if fixed != raw:
            return fixed
    if learnt_suffix is not None:  # the feed's own titles decide: its suffix, or none at all
        return strip_learnt_suffix(raw, learnt_suffix) if learnt_suffix else raw
    return strip_channel(strip_site_name(raw, name_keys(feed_title, site_names), prefix=prefix))
