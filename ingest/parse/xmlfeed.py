"""RSS 0.9x/1.0/2.0, Atom and RDF documents via feedparser.

feedparser only ever sees a byte stream (never a URL or path), so it cannot fetch anything; its
SAX parser does not load external entities and it drops entity declarations whose values
reference other entities (billion laughs). It gets the document already decoded to UTF-8
(`ingest.parse.encoding`), so its own encoding guesses never run.
"""

from __future__ import annotations

import io
import re
from typing import Any

import feedparser

from ingest.errors import ParseError
from ingest.models import FetchResult, ParsedFeed
from ingest.parse.bodies import HTML_TYPES, Candidate, choose_body, own_summary
from ingest.parse.common import (
    MAX_AUTHOR_CHARS,
    Draft,
    build_entries,
    from_struct,
    hub_and_self,
    language,
    safe_link,
    text,
)
from ingest.parse.encoding import to_utf8

_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ROOT_START = re.compile(rb"<[A-Za-z]")
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*(<!doctype\s+html|<html[\s>])", re.IGNORECASE | re.DOTALL)

# feedparser runs an email regex over author-like fields (author, dc:creator, managingEditor,
# webMaster, publisher, ...) that is quadratic in their length: a 32 KB author costs seconds, and
# markup inside the element (child tags, CDATA pieces) defeats any cut made on the raw bytes. So
# the one method that runs it is wrapped to cut the field first; stored authors are cut too.
_sync_author_detail = feedparser.mixin._FeedParserMixin._sync_author_detail


def _bounded_sync_author_detail(self: Any, key: str = "author") -> None:
    context = self._get_context()
    value = context.get(key)
    if isinstance(value, str) and len(value) > MAX_AUTHOR_CHARS:
        context[key] = value[:MAX_AUTHOR_CHARS]
    _sync_author_detail(self, key)


feedparser.mixin._FeedParserMixin._sync_author_detail = _bounded_sync_author_detail


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


def _candidates(entry: Any) -> list[Candidate]:
    """Content values first (so they win ties), then the summary/description."""
    found = [
        Candidate(c["value"], c.get("type", "text/html") in HTML_TYPES)
        for c in entry.get("content") or []
        if isinstance(c.get("value"), str)
    ]
    summary = entry.get("summary")
    if isinstance(summary, str):
        summary_type = (entry.get("summary_detail") or {}).get("type", "text/html")
        found.append(Candidate(summary, summary_type in HTML_TYPES))
    return found


def _entry_language(entry: Any) -> str | None:
    details = [*(entry.get("content") or []), entry.get("summary_detail"), entry.get("title_detail")]
    for detail in filter(None, details):
        lang = language(detail.get("language"))
        if lang:
            return lang
    return language(entry.get("language"))


def _draft(entry: Any, base: str) -> Draft:
    body = choose_body(_candidates(entry))
    summary = entry.get("summary")
    # a link feedparser copied from a permalink guid counts only if it is absolute
    link_base = "" if entry.get("guidislink") else base
    return Draft(
        guid=text(entry.get("id")),
        url=safe_link(entry.get("link"), link_base),
        title=(entry.get("title") or "").strip(),
        content=body.value if body else "",
        is_html=body.is_html if body else True,
        summary=own_summary(summary if isinstance(summary, str) else None, body),
        published_at=from_struct(dict.get(entry, "published_parsed"))  # dict.get: no feedparser
        or from_struct(dict.get(entry, "updated_parsed")),  # fallback mapping (and its warning)
        author=(text(entry.get("author")) or "")[:MAX_AUTHOR_CHARS] or None,
        language=_entry_language(entry),
    )


def _ttl(value: Any) -> int | None:
    digits = str(value or "").strip()
    return int(digits) if digits.isdigit() and 0 < int(digits) < 525_600 else None


def parse_xml(result: FetchResult, *, feed_id: int, feed_url: str, max_entries: int) -> ParsedFeed:
    content = (result.content or b"").lstrip(b" \t\r\n")  # a stray newline before <?xml is common
    warnings: list[str] = []
    root = _ROOT_START.search(content)
    if _ENTITY_DECL.search(content[: root.start() if root else len(content)]):
        warnings.append("entity declarations in the DOCTYPE were not expanded")
    decoded = to_utf8(content, result.headers)
    if decoded.source in ("western", "detected", "fallback"):
        warnings.append(f"encoding: nothing usable declared, decoded as {decoded.source} {decoded.encoding}")
    headers = {k.lower(): v for k, v in result.headers.items()}
    headers["content-type"] = "application/xml; charset=utf-8"
    # no content-location: feedparser would resolve plain guids against it, changing their identity
    parsed = feedparser.parse(
        io.BytesIO(decoded.data), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )
    if not parsed.get("version") and not parsed.entries:
        raise _not_a_feed(content, parsed)
    if parsed.get("bozo"):
        warnings.append(_bozo_warning(parsed.get("bozo_exception")))
    feed = parsed.feed
    base = result.url or feed_url
    feed_language = language(feed.get("language")) or language(headers.get("content-language"))
    title = text(feed.get("title"))
    entries = build_entries(
        [_draft(e, base) for e in parsed.entries],
        feed_id=feed_id,
        feed_url=feed_url,
        feed_title=title,
        feed_language=feed_language,
        max_entries=max_entries,
        warnings=warnings,
    )
    hub, self_url = hub_and_self(
        [(str(link.get("rel", "")).lower(), link.get("href")) for link in feed.get("links") or []],
        result.headers,
        base,
    )
    return ParsedFeed(
        title=title,
        link=safe_link(feed.get("link"), base),
        language=feed_language,
        entries=entries,
        ttl_minutes=_ttl(feed.get("ttl")),
        warnings=warnings,
        hub=hub,
        self_url=self_url,
    )
