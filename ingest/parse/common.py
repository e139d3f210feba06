"""What the XML and JSON Feed readers share: link, date and language helpers, entry identity."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from ingest.clean.title import learn_suffix
from ingest.clean.url import canonical_url  # the same canonical form the clean stage stores
from ingest.models import RawEntry

_LANG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_].*)?$")
_LINK_HEADER = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
MAX_AUTHOR_CHARS = 512


@dataclass
class Draft:
    """An entry before its key is known (keys depend on the whole document)."""

    guid: str | None
    url: str | None
    title: str
    content: str
    is_html: bool
    summary: str | None
    published_at: datetime | None
    author: str | None
    language: str | None


def safe_link(value: Any, base: str) -> str | None:
    """An absolute http(s) link, or None (javascript:, data:, mailto: and junk are dropped)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        link = urljoin(base, value.strip())
        parts = urlsplit(link)
        return link if parts.scheme.lower() in ("http", "https") and parts.hostname else None
    except ValueError:  # e.g. "http://[broken": not a link
        return None


def language(value: Any) -> str | None:
    """The primary subtag of a language tag, lowercased ("en-US" -> "en"): only a hint."""
    match = _LANG.match(value.strip()) if isinstance(value, str) else None
    return match.group(1).lower() if match else None


def text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def from_struct(parsed: Any) -> datetime | None:
    """feedparser's UTC time tuple as an aware datetime; impossible dates become None."""
    if not parsed:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in parsed[:6])
        dt = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    return dt if 1970 <= dt.year <= 2200 else None


def from_text(value: Any) -> datetime | None:
    """An RFC 3339 / RFC 822 / W3C date string as an aware UTC datetime, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC) if 1970 <= dt.year <= 2200 else None
    except ValueError:
        return from_struct(feedparser.datetimes._parse_date(value))


def _content_hash(title: str, content: str) -> str:
    return hashlib.sha256(f"{title}\n{content}".encode()).hexdigest()


def entry_hash(entry: RawEntry) -> str:
    """A digest of what the entry says: changes when its title, link, body or summary change."""
    value = "\x00".join((entry.title, entry.url or "", entry.content, entry.summary or ""))
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _header_links(headers: Mapping[str, str], base: str) -> dict[str, str]:
    """rel -> absolute URL from an HTTP `Link` header (the first of each rel)."""
    found: dict[str, str] = {}
    for target, params in _LINK_HEADER.findall(headers.get("link", "")):
        rel = re.search(r'rel\s*=\s*"?([^";]+)"?', params)
        link = safe_link(target, base)
        for name in rel.group(1).lower().split() if rel and link else []:
            found.setdefault(name, link)  # type: ignore[arg-type]
    return found


def hub_and_self(
    links: list[tuple[str, Any]], headers: Mapping[str, str], base: str
) -> tuple[str | None, str | None]:
    """The WebSub hub and self URL: the HTTP Link header first (the spec's order), then the document."""
    from_header = _header_links(headers, base)
    hub, self_url = from_header.get("hub"), from_header.get("self")
    for rel, href in links:
        link = safe_link(href, base)
        if rel == "hub" and link and hub is None:
            hub = link
        elif rel == "self" and link and self_url is None:
            self_url = link
    return hub, self_url


def _assign_keys(drafts: list[Draft]) -> list[str]:
    """guid if unique in the document, else canonical link if unique among the rest, else hash."""
    guids = Counter(d.guid for d in drafts if d.guid)
    use_guid = [d.guid is not None and guids[d.guid] == 1 for d in drafts]
    links = [
        canonical_url(d.url) if d.url and not guid_ok else None
        for d, guid_ok in zip(drafts, use_guid, strict=True)
    ]
    link_counts = Counter(link for link in links if link)
    keys = []
    for draft, guid_ok, link in zip(drafts, use_guid, links, strict=True):
        if guid_ok:
            keys.append(f"guid:{draft.guid}")
        elif link and link_counts[link] == 1:
            keys.append(f"url:{link}")
        else:
            keys.append(f"hash:{_content_hash(draft.title, draft.content)}")
    return keys


def build_entries(
    drafts: list[Draft],
    *,
    feed_id: int,
    feed_url: str,
    feed_title: str | None,
    feed_language: str | None,
    max_entries: int,
    warnings: list[str],
) -> list[RawEntry]:
    """RawEntries in document order, keyed, with the title suffix the document's titles share."""
    keys = _assign_keys(drafts)
    if len(drafts) > max_entries:
        warnings.append(f"entries capped at {max_entries} of {len(drafts)}")
    suffix = learn_suffix([d.title for d in drafts])
    return [
        RawEntry(
            feed_id=feed_id,
            feed_url=feed_url,
            entry_key=key,
            url=d.url,
            title=d.title,
            content=d.content,
            summary=d.summary,
            published_at=d.published_at,
            author=d.author,
            feed_title=feed_title,
            language_hint=d.language or feed_language,
            is_html=d.is_html,
            title_suffix=suffix,
        )
        for d, key in list(zip(drafts, keys, strict=True))[:max_entries]
    ]
