"""Feed bytes -> ParsedFeed: RSS 0.9x/1.0/2.0, Atom and RDF via feedparser, JSON Feed via json.

feedparser only ever sees a byte stream (never a URL or path), so it cannot
fetch anything; its SAX parser does not load external entities and it drops
entity declarations whose values reference other entities (billion laughs).
Encodings: a declaration that decodes cleanly is trusted (feedparser maps
gb2312 to gb18030); otherwise undeclared or wrongly declared bytes are sniffed
and transcoded to UTF-8 first.

Entry identity (`entry_key`) is "guid:<id>" when the id is unique in the
document, else "url:<canonical link>", else "hash:<sha256 of title+content>".
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from ingest.clean.url import canonical_url  # the same canonical form the clean stage stores
from ingest.errors import ParseError
from ingest.log import get_logger
from ingest.models import FetchResult, ParsedFeed, RawEntry

log = get_logger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")
_XML_DECL = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([^\"']*)([\"'])", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z]")
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html[\s>])", re.IGNORECASE | re.DOTALL)
_LANG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_].*)?$")
_ALIASES = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030"}
# feedparser runs an email regex over author-like fields (author, dc:creator, managingEditor,
# webMaster, publisher, ...) that is quadratic in their length: a 32 KB author costs seconds, and
# markup inside the element (child tags, CDATA pieces) defeats any cut made on the raw bytes. So
# the one method that runs it is wrapped to cut the field first; stored authors are cut too.
MAX_AUTHOR_CHARS = 512
_sync_author_detail = feedparser.mixin._FeedParserMixin._sync_author_detail


def _bounded_sync_author_detail(self: Any, key: str = "author") -> None:
    context = self._get_context()
    value = context.get(key)
    if isinstance(value, str) and len(value) > MAX_AUTHOR_CHARS:
        context[key] = value[:MAX_AUTHOR_CHARS]
    _sync_author_detail(self, key)


feedparser.mixin._FeedParserMixin._sync_author_detail = _bounded_sync_author_detail


@dataclass
class _Draft:
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


# -- small helpers -------------------------------------------------------------------------


def _safe_link(value: Any, base: str) -> str | None:
    """An absolute http(s) link, or None (javascript:, data:, mailto: and junk are dropped)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        link = urljoin(base, value.strip())
        parts = urlsplit(link)
        return link if parts.scheme.lower() in ("http", "https") and parts.hostname else None
    except ValueError:  # e.g. "http://[broken": not a link
        return None


def _language(value: Any) -> str | None:
    """The primary subtag of a language tag, lowercased ("en-US" -> "en"): only a hint."""
    match = _LANG.match(value.strip()) if isinstance(value, str) else None
    return match.group(1).lower() if match else None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _from_struct(parsed: Any) -> datetime | None:
    """feedparser's UTC time tuple as an aware datetime; impossible dates become None."""
    if not parsed:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in parsed[:6])
        dt = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    return dt if 1970 <= dt.year <= 2200 else None


def _from_text(value: Any) -> datetime | None:
    """An RFC 3339 / RFC 822 / W3C date string as an aware UTC datetime, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC) if 1970 <= dt.year <= 2200 else None
    except ValueError:
        return _from_struct(feedparser.datetimes._parse_date(value))


def _content_hash(title: str, content: str) -> str:
    return hashlib.sha256(f"{title}\n{content}".encode()).hexdigest()


def entry_hash(entry: RawEntry) -> str:
    """A digest of what the entry says: changes when its title, link, body or summary change."""
    text = "\x00".join((entry.title, entry.url or "", entry.content, entry.summary or ""))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


_LINK_HEADER = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")


def _header_links(headers: Mapping[str, str], base: str) -> dict[str, str]:
    """rel -> absolute URL from an HTTP `Link` header (the first of each rel)."""
    found: dict[str, str] = {}
    for target, params in _LINK_HEADER.findall(headers.get("link", "")):
        rel = re.search(r'rel\s*=\s*"?([^";]+)"?', params)
        link = _safe_link(target, base)
        for name in rel.group(1).lower().split() if rel and link else []:
            found.setdefault(name, link)  # type: ignore[arg-type]
    return found


def _hub_and_self(
    links: list[tuple[str, Any]], headers: Mapping[str, str], base: str
) -> tuple[str | None, str | None]:
    """The WebSub hub and self URL: the HTTP Link header first (the spec's order), then the document."""
    from_header = _header_links(headers, base)
    hub, self_url = from_header.get("hub"), from_header.get("self")
    for rel, href in links:
        link = _safe_link(href, base)
        if rel == "hub" and link and hub is None:
            hub = link
        elif rel == "self" and link and self_url is None:
            self_url = link
    return hub, self_url


def _assign_keys(drafts: list[_Draft]) -> list[str]:
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


def _entries(
    drafts: list[_Draft],
    *,
    feed_id: int,
    feed_url: str,
    feed_title: str | None,
    feed_language: str | None,
    max_entries: int,
    warnings: list[str],
) -> list[RawEntry]:
    keys = _assign_keys(drafts)
    if len(drafts) > max_entries:
        warnings.append(f"entries capped at {max_entries} of {len(drafts)}")
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
        )
        for d, key in list(zip(drafts, keys, strict=True))[:max_entries]
    ]


# -- encodings -----------------------------------------------------------------------------


def _declared_encoding(content: bytes, headers: Mapping[str, str]) -> str | None:
    decl = _XML_DECL.match(content[:500])
    if decl:
        return decl.group(2).decode("ascii", "replace").strip().lower() or None
    charset = _CHARSET.search(headers.get("content-type", ""))
    return charset.group(1).lower() if charset else None


def _decodes(content: bytes, encoding: str) -> bool:
    try:
        content.decode(_ALIASES.get(encoding, encoding))
    except (LookupError, UnicodeDecodeError):
        return False
    return True


def _sniff(content: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a dependency of trafilatura
        return None
    best = from_bytes(content[:200_000]).best()
    return best.encoding if best else None


def _to_feedparser_input(
    content: bytes, headers: Mapping[str, str], warnings: list[str]
) -> tuple[bytes, dict[str, str]]:
    """Bytes and headers feedparser will decode right: transcoded to UTF-8 when the declaration lies."""
    out_headers = {k.lower(): v for k, v in headers.items()}
    if content.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return content, out_headers
    declared = _declared_encoding(content, headers)
    if (declared and _decodes(content, declared)) or _decodes(content, "utf-8"):
        return content, out_headers
    sniffed = _sniff(content)
    if not sniffed:
        return content, out_headers
    text = content.decode(sniffed, errors="replace")
    warnings.append(f"encoding: declared {declared or 'nothing'}, decoded as sniffed {sniffed}")
    data = text.encode("utf-8")
    data = _XML_DECL.sub(rb"\1utf-8\3", data, count=1)
    out_headers["content-type"] = "application/xml; charset=utf-8"
    return data, out_headers


# -- XML feeds -----------------------------------------------------------------------------


def _not_a_feed(content: bytes, parsed: Any) -> ParseError:
    if _HTML_START.match(content[:2000]):
        return ParseError("not a feed: looks like an HTML page")
    problem = parsed.get("bozo_exception")
    detail = f" ({problem})" if problem else ""
    return ParseError(f"not a feed: no RSS, Atom or RDF root element{detail}")


def _bozo_warning(exc: Any) -> str:
    if isinstance(exc, feedparser.NonXMLContentType):
        return f"content type: {exc}"
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return f"encoding: {exc}"
    return f"malformed feed recovered: {exc}"


def _fullest(entry: Any) -> tuple[str, bool, str | None]:
    """(content, is_html, summary): the longest content value, else the summary as content."""
    summary = entry.get("summary")
    summary_type = (entry.get("summary_detail") or {}).get("type", "text/html")
    bodies = [c for c in entry.get("content") or [] if isinstance(c.get("value"), str)]
    if bodies:
        best = max(bodies, key=lambda c: len(c["value"]))
        content, ctype = best["value"], best.get("type", "text/html")
    else:
        content, ctype = summary or "", summary_type
    summary = summary if summary and summary != content else None
    return content, ctype in _HTML_TYPES, summary


def _entry_language(entry: Any) -> str | None:
    details = [*(entry.get("content") or []), entry.get("summary_detail"), entry.get("title_detail")]
    for detail in filter(None, details):
        lang = _language(detail.get("language"))
        if lang:
            return lang
    return _language(entry.get("language"))


def _xml_draft(entry: Any, base: str) -> _Draft:
    content, is_html, summary = _fullest(entry)
    # a link feedparser copied from a permalink guid counts only if it is absolute
    link_base = "" if entry.get("guidislink") else base
    return _Draft(
        guid=_text(entry.get("id")),
        url=_safe_link(entry.get("link"), link_base),
        title=(entry.get("title") or "").strip(),
        content=content,
        is_html=is_html,
        summary=summary,
        published_at=_from_struct(dict.get(entry, "published_parsed"))  # dict.get: no feedparser
        or _from_struct(dict.get(entry, "updated_parsed")),  # fallback mapping (and its warning)
        author=(_text(entry.get("author")) or "")[:MAX_AUTHOR_CHARS] or None,
        language=_entry_language(entry),
    )


def _ttl(value: Any) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) < 525_600 else None


def _parse_xml(result: FetchResult, *, feed_id: int, feed_url: str, max_entries: int) -> ParsedFeed:
    content = (result.content or b"").lstrip(b" \t\r\n")  # a stray newline before <?xml is common
    warnings: list[str] = []
    root = _ROOT_START.search(content)
    if _ENTITY_DECL.search(content[: root.start() if root else len(content)]):
        warnings.append("entity declarations in the DOCTYPE were not expanded")
    data, headers = _to_feedparser_input(content, result.headers, warnings)
    headers.setdefault("content-type", "application/xml")
    # no content-location: feedparser would resolve plain guids against it, changing their identity
    parsed = feedparser.parse(
        io.BytesIO(data), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    if not parsed.get("version") and not parsed.entries:
        raise _not_a_feed(content, parsed)
    if parsed.get("bozo"):
        warnings.append(_bozo_warning(parsed.get("bozo_exception")))
    feed = parsed.feed
    base = result.url or feed_url
    feed_language = _language(feed.get("language")) or _language(headers.get("content-language"))
    title = _text(feed.get("title"))
    entries = _entries(
        [_xml_draft(e, base) for e in parsed.entries],
        feed_id=feed_id,
        feed_url=feed_url,
        feed_title=title,
        feed_language=feed_language,
        max_entries=max_entries,
        warnings=warnings,
    )
    hub, self_url = _hub_and_self(
        [(str(link.get("rel", "")).lower(), link.get("href")) for link in feed.get("links") or []],
        result.headers,
        base,
    )
    return ParsedFeed(
        title=title,
        link=_safe_link(feed.get("link"), base),
        language=feed_language,
        entries=entries,
        ttl_minutes=_ttl(feed.get("ttl")),
        warnings=warnings,
        hub=hub,
        self_url=self_url,
    )


# -- JSON Feed -----------------------------------------------------------------------------


def _is_json(content: bytes, headers: Mapping[str, str]) -> bool:
    start = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start == b"{" or ("json" in headers.get("content-type", "").lower() and start != b"<")


def _json_author(obj: Mapping[str, Any]) -> str | None:
    authors = obj.get("authors")
    first = authors[0] if isinstance(authors, list) and authors else obj.get("author")
    name = _text(first.get("name")) if isinstance(first, dict) else None
    return name[:MAX_AUTHOR_CHARS] if name else None


def _json_draft(item: Mapping[str, Any], base: str) -> _Draft:
    html, text = item.get("content_html"), item.get("content_text")
    is_html = isinstance(html, str) and bool(html.strip())
    content = str(html) if is_html else text if isinstance(text, str) else ""
    summary = _text(item.get("summary"))
    raw_id = item.get("id")
    return _Draft(
        guid=_text(str(raw_id)) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None,
        url=_safe_link(item.get("url"), base) or _safe_link(item.get("external_url"), base),
        title=(item.get("title") or "").strip() if isinstance(item.get("title"), str) else "",
        content=content,
        is_html=is_html,
        summary=summary if summary != content else None,
        published_at=_from_text(item.get("date_published")) or _from_text(item.get("date_modified")),
        author=_json_author(item),
        language=_language(item.get("language")),
    )


def _parse_json(result: FetchResult, *, feed_id: int, feed_url: str, max_entries: int) -> ParsedFeed:
    try:
        doc = json.loads((result.content or b"").decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"not a feed: invalid JSON ({exc})") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or "jsonfeed.org/version/" not in version:
        raise ParseError("not a feed: JSON document without a JSON Feed version")
    items = doc.get("items") if isinstance(doc.get("items"), list) else []
    base = result.url or feed_url
    warnings = [] if isinstance(doc.get("items"), list) else ["JSON Feed has no items list"]
    title = _text(doc.get("title"))
    language = _language(doc.get("language"))
    drafts = [_json_draft(item, base) for item in items if isinstance(item, dict)]
    entries = _entries(
        drafts,
        feed_id=feed_id,
        feed_url=feed_url,
        feed_title=title,
        feed_language=language,
        max_entries=max_entries,
        warnings=warnings,
    )
    hubs = [
        ("hub", h.get("url"))
        for h in doc.get("hubs") or []
        if isinstance(h, dict) and str(h.get("type", "")).lower() in ("websub", "pubsubhubbub")
    ]
    hub, self_url = _hub_and_self([*hubs, ("self", doc.get("feed_url"))], result.headers, base)
    return ParsedFeed(
        title=title,
        link=_safe_link(doc.get("home_page_url"), base),
        language=language,
        entries=entries,
        warnings=warnings,
        hub=hub,
        self_url=self_url,
    )


# -- entry point ---------------------------------------------------------------------------


def parse_feed(result: FetchResult, *, feed_id: int, feed_url: str, max_entries: int = 1000) -> ParsedFeed:
    """Parse a fetched feed document; ParseError("not a feed: ...") when it is none."""
    content = result.content or b""
    if not content.strip():
        raise ParseError("not a feed: empty document")
    parser = _parse_json if _is_json(content, result.headers) else _parse_xml
    try:
        parsed = parser(result, feed_id=feed_id, feed_url=feed_url, max_entries=max_entries)
    except (AttributeError, LookupError, TypeError, ValueError, RecursionError, AssertionError) as exc:
        # feedparser has bugs on hostile input (found by tests/test_hostile.py's fuzzing): one feed's error
        raise ParseError(f"not a feed: the parser failed on it ({type(exc).__name__}: {exc})"[:300]) from exc
    for warning in parsed.warnings:
        log.warning("parse.warning", url=feed_url, warning=warning)
    log.debug("parse.done", url=feed_url, entries=len(parsed.entries))
    return parsed
