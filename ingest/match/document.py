"""The article as the matcher sees it: tokenized and normalized once, queried many times."""

from __future__ import annotations

import unicodedata
from bisect import bisect_left
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from ingest.match.text import HAS_CHAR_RE, TOKEN_TABLE, is_char_token, token_keys

BODY_OFFSET = 100_000  # body positions start here so phrases and NEAR never span title and body
LANG_KEY = "\x00lang:"
FEED_KEY = "\x00feed:"
DOMAIN_KEY = "\x00domain:"


@dataclass(frozen=True)
class MatchDocument:
    """What a query is matched against; `language` is an ISO 639-1 code."""

    title: str
    text: str
    language: str | None = None
    feed_url: str | None = None
    url: str | None = None


def url_host(url: str | None) -> str:
    """Lower-case host of a URL (or of a bare host), without a leading `www.`."""
    if not url:
        return ""
    parsed = urlsplit(url if "//" in url else "//" + url)
    host = (parsed.hostname or "").rstrip(".")
    return host[4:] if host.startswith("www.") else host


def url_identity(url: str) -> str:
    """A URL compared loosely: no scheme, no `www.`, no trailing slash, host lower-cased."""
    parsed = urlsplit(url if "//" in url else "//" + url)
    rest = parsed.path.rstrip("/") + (f"?{parsed.query}" if parsed.query else "")
    return url_host(url) + rest


def language_code(language: str | None) -> str:
    """`en-US` -> `en`; None -> ``."""
    return (language or "").split("-")[0].split("_")[0].strip().lower()


class PreparedDocument:
    """Token positions and index keys of one article (or of its title only).

    `keys` holds every token key, every bigram of consecutive space-less-script
    characters and the field keys (language, feed host, domain and its parents):
    the matcher intersects it with its index to find candidate subscriptions.
    """

    def __init__(
        self, doc: MatchDocument, *, title_only: bool = False, known_prefixes: Collection[str] = ()
    ) -> None:
        self.source = doc
        self.language = language_code(doc.language)
        self.feed_host = url_host(doc.feed_url)
        self.feed_identity = url_identity(doc.feed_url) if doc.feed_url else ""
        self.url_host = url_host(doc.url)
        self.title_only = title_only
        self.bases: dict[str, str] = {}
        self.known_prefixes = known_prefixes
        self.prefix_hits: dict[str, list[str]] = {}
        self._segments: list[tuple[int, list[str]]] = []  # (first position, token keys) per field
        self.keys: set[str] = set()
        has_chars = self._add_tokens(doc.title, 0)
        if not title_only:
            has_chars = self._add_tokens(doc.text, BODY_OFFSET) or has_chars
        if has_chars:
            self._add_bigrams()
        self._add_field_keys()

    def _add_tokens(self, text: str, start: int) -> bool:
        """Record the text's token keys; False when it certainly has no space-less-script token."""
        text = unicodedata.normalize("NFKC", text)
        tokens, keys = token_keys(text)
        self._segments.append((start, keys))
        self.keys.update(keys)
        self.bases.update(filter(None, map(TOKEN_TABLE.__getitem__, set(tokens))))
        return HAS_CHAR_RE.search(text) is not None

    @cached_property
    def tokens(self) -> frozenset[str]:
        """The token keys (the keys of `positions`, without building it)."""
        return frozenset().union(*(keys for _, keys in self._segments))

    @cached_property
    def positions(self) -> dict[str, list[int]]:
        """Token key -> its positions, in order (title from 0, body from BODY_OFFSET); built on use."""
        positions: dict[str, list[int]] = {}
        setdefault = positions.setdefault
        for start, keys in self._segments:
            for offset, key in enumerate(keys, start):
                setdefault(key, []).append(offset)
        return positions

    def _add_bigrams(self) -> None:
        chars = {
            pos: key
            for key, plist in self.positions.items()
            if len(key) == 1 and is_char_token(key)
            for pos in plist
        }
        for pos, key in chars.items():
            nxt = chars.get(pos + 1)
            if nxt is not None:
                self.keys.add(key + nxt)

    def _add_field_keys(self) -> None:
        if self.language:
            self.keys.add(LANG_KEY + self.language)
        if self.feed_host:
            self.keys.add(FEED_KEY + self.feed_host)
        host = self.url_host
        while host:
            self.keys.add(DOMAIN_KEY + host)
            host = host.partition(".")[2]

    @cached_property
    def title_view(self) -> PreparedDocument:
        """The same article restricted to its title (for `title:`)."""
        if self.title_only:
            return self
        return PreparedDocument(self.source, title_only=True)

    @cached_property
    def _sorted_bases(self) -> list[str]:
        return sorted(self.bases)

    def prefix_keys(self, prefix: str) -> list[str]:
        """Keys of the tokens whose base starts with `prefix`."""
        hits = self.prefix_hits.get(prefix)
        if hits is not None:
            return hits
        if prefix in self.known_prefixes:
            return []
        bases = self._sorted_bases
        found: list[str] = []
        i = bisect_left(bases, prefix)
        while i < len(bases) and bases[i].startswith(prefix):
            found.append(self.bases[bases[i]])
            i += 1
        self.prefix_hits[prefix] = found
        return found

    def record_prefix(self, prefix: str, base: str) -> None:
        """The matcher's automaton found `base` under `prefix`."""
        key = self.bases.get(base)
        if key is not None:
            self.prefix_hits.setdefault(prefix, []).append(key)
