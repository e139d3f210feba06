"""Feed management helpers: discovery from a web page, OPML import and export.

Discovery: `ingest feeds add` on a page URL fetches it (same SSRF checks, limits and
User-Agent as polling); if it is a feed, that URL is added; if it is an HTML page, the first
`<link rel="alternate">` with a feed type (RSS, Atom, JSON Feed) is fetched and, if it
parses, added instead. OPML is read with entity expansion, DTD loading and network
access off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urljoin, urlsplit

import httpx
from lxml import etree, html

from ingest.errors import ConfigError, FetchError, ParseError
from ingest.fetch import fetch_page
from ingest.log import get_logger
from ingest.models import Feed
from ingest.parse import parse_feed
from ingest.settings import Settings

log = get_logger(__name__)

_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ROOT = re.compile(rb"<[A-Za-z]")
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/rdf+xml",
    "application/json",
    "text/xml",
    "application/xml",
)


@dataclass(frozen=True)
class Discovered:
    """The feed URL to add, its title, and whether it came from a page's <link>."""

    url: str
    title: str | None
    from_page: str | None = None


def feed_links(page: bytes, base: str) -> list[str]:
    """Absolute feed URLs a page announces with `<link rel="alternate" type="...">`, in page order."""
    try:
        doc = html.document_fromstring(page, parser=html.HTMLParser(no_network=True, recover=True))
    except (etree.ParserError, ValueError):
        return []
    found: list[str] = []
    for link in doc.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").split(";")[0].strip().lower()
        href = (link.get("href") or "").strip()
        if "alternate" in rels and kind in FEED_TYPES and href:
            url = urljoin(base, href)
            if urlsplit(url).scheme in ("http", "https") and url not in found:
                found.append(url)
    return found


def discover(client: httpx.Client, url: str, settings: Settings) -> Discovered:
    """The feed behind `url`: itself if it is a feed, else the feed its page links to.

    Raises FetchError when the URL cannot be fetched (UnsafeURLError when refused) and
    ParseError when it is neither a feed nor a page announcing one.
    """
    result = fetch_page(client, url, max_bytes=settings.max_body_bytes, timeout=settings.fetch_timeout)
    try:
        parsed = parse_feed(result, feed_id=0, feed_url=url, max_entries=settings.max_entries)
        return Discovered(url=url, title=parsed.title)
    except ParseError as exc:
        candidates = feed_links(result.content or b"", result.url)
        if not candidates:
            raise ParseError(
                f'{url}: {exc} and the page links to no feed (no <link rel="alternate"> with a feed type)'
            ) from None
    problems = []
    for candidate in candidates:
        try:
            found = fetch_page(
                client, candidate, max_bytes=settings.max_body_bytes, timeout=settings.fetch_timeout
            )
            parsed = parse_feed(found, feed_id=0, feed_url=candidate, max_entries=settings.max_entries)
        except (FetchError, ParseError) as exc:
            problems.append(f"{candidate}: {getattr(exc, 'reason', None) or exc}")
            continue
        log.info("feed_discovered", page=url, feed_url=candidate)
        return Discovered(url=candidate, title=parsed.title, from_page=url)
    raise ParseError(f"{url}: the page links to feeds, but none could be read ({'; '.join(problems)})")


# -- OPML ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutlineFeed:
    """One feed of an OPML file."""

    url: str
    title: str | None


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
    )


def read_opml(data: bytes) -> list[OutlineFeed]:
    """Every `<outline xmlUrl=...>` at any depth (categories are flattened), first occurrence kept.

    A file declaring entities is refused: libxml2 expands internal entities in attribute
    values whatever the parser options, and an OPML file has no business declaring any.
    """
    root_at = _ROOT.search(data)
    if _ENTITY.search(data[: root_at.start() if root_at else len(data)]):
        raise ConfigError("OPML file declares XML entities: refused (no entity expansion)")
    try:
        root = etree.fromstring(data, parser=_safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"not an OPML file: {exc}") from None
    if root is None or etree.QName(root).localname.lower() != "opml":
        raise ConfigError("not an OPML file: the root element is not <opml>")
    feeds: dict[str, OutlineFeed] = {}
    for outline in root.iter("{*}outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url and url not in feeds:
            title = (outline.get("title") or outline.get("text") or "").strip() or None
            feeds[url] = OutlineFeed(url=url, title=title)
    return list(feeds.values())


def write_opml(feeds: list[Feed], *, title: str = "news-ingest feeds") -> bytes:
    """OPML 2.0 of the feeds (muted ones included: the list is the subscription record)."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(datetime.now(UTC), usegmt=True)
    body = etree.SubElement(root, "body")
    for feed in feeds:
        name = feed.title or feed.url
        etree.SubElement(body, "outline", type="rss", text=name, title=name, xmlUrl=feed.url)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
