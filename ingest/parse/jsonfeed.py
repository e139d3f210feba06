"""JSON Feed 1.0/1.1 documents."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ingest.errors import ParseError
from ingest.models import FetchResult, ParsedFeed
from ingest.parse.bodies import Candidate, choose_body, own_summary
from ingest.parse.common import (
    MAX_AUTHOR_CHARS,
    Draft,
    build_entries,
    from_text,
    hub_and_self,
    language,
    safe_link,
    text,
)


def is_json(content: bytes, headers: Mapping[str, str]) -> bool:
    start = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return start == b"{" or ("json" in headers.get("content-type", "").lower() and start != b"<")


def _author(obj: Mapping[str, Any]) -> str | None:
    authors = obj.get("authors")
    first = authors[0] if isinstance(authors, list) and authors else obj.get("author")
    name = text(first.get("name")) if isinstance(first, dict) else None
    return name[:MAX_AUTHOR_CHARS] if name else None


def _draft(item: Mapping[str, Any], base: str) -> Draft:
    candidates = [
        Candidate(value, is_html)
        for value, is_html in (
            (item.get("content_html"), True),
            (item.get("content_text"), False),
            (item.get("summary"), False),
        )
        if isinstance(value, str)
    ]
    body = choose_body(candidates)
    summary = item.get("summary")
    raw_id = item.get("id")
    title = item.get("title")
    return Draft(
        guid=text(str(raw_id)) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None,
        url=safe_link(item.get("url"), base) or safe_link(item.get("external_url"), base),
        title=title.strip() if isinstance(title, str) else "",
        content=body.value if body else "",
        is_html=body.is_html if body else False,
        summary=text(own_summary(summary if isinstance(summary, str) else None, body)),
        published_at=from_text(item.get("date_published")) or from_text(item.get("date_modified")),
        author=_author(item),
        language=language(item.get("language")),
    )


def parse_json(result: FetchResult, *, feed_id: int, feed_url: str, max_entries: int) -> ParsedFeed:
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
    title = text(doc.get("title"))
    feed_language = language(doc.get("language"))
    entries = build_entries(
        [_draft(item, base) for item in items if isinstance(item, dict)],
        feed_id=feed_id,
        feed_url=feed_url,
        feed_title=title,
        feed_language=feed_language,
        max_entries=max_entries,
        warnings=warnings,
    )
    hubs = [
        ("hub", h.get("url"))
        for h in doc.get("hubs") or []
        if isinstance(h, dict) and str(h.get("type", "")).lower() in ("websub", "pubsubhubbub")
    ]
    hub, self_url = hub_and_self([*hubs, ("self", doc.get("feed_url"))], result.headers, base)
    return ParsedFeed(
        title=title,
        link=safe_link(doc.get("home_page_url"), base),
        language=feed_language,
        entries=entries,
        warnings=warnings,
        hub=hub,
        self_url=self_url,
    )
