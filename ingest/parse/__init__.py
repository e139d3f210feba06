"""Feed bytes -> ParsedFeed: RSS 0.9x/1.0/2.0, Atom and RDF via feedparser, JSON Feed via json.

Encodings are decided here, not by feedparser (`encoding`): BOM, HTTP charset, XML declaration,
then detection. An entry's body is its fullest non-empty text (`bodies`). Entry identity
(`entry_key`) is "guid:<id>" when the id is unique in the document, else "url:<canonical link>",
else "hash:<sha256 of title+content>". The title suffix the document's titles share is learnt
here, where all of them are at hand, and travels with each entry to the clean stage.
"""

from __future__ import annotations

from ingest.errors import ParseError
from ingest.log import get_logger
from ingest.models import FetchResult, ParsedFeed
from ingest.parse.common import MAX_AUTHOR_CHARS, entry_hash
from ingest.parse.jsonfeed import is_json, parse_json
from ingest.parse.xmlfeed import parse_xml

__all__ = ["MAX_AUTHOR_CHARS", "entry_hash", "parse_feed"]

log = get_logger(__name__)


def parse_feed(result: FetchResult, *, feed_id: int, feed_url: str, max_entries: int = 1000) -> ParsedFeed:
    """Parse a fetched feed document; ParseError("not a feed: ...") when it is none."""
    content = result.content or b""
    if not content.strip():
        raise ParseError("not a feed: empty document")
    parser = parse_json if is_json(content, result.headers) else parse_xml
    try:
        parsed = parser(result, feed_id=feed_id, feed_url=feed_url, max_entries=max_entries)
    except (AttributeError, LookupError, TypeError, ValueError, RecursionError, AssertionError) as exc:
        # feedparser has bugs on hostile input (found by tests/test_hostile.py's fuzzing): one feed's error
        raise ParseError(f"not a feed: the parser failed on it ({type(exc).__name__}: {exc})"[:300]) from exc
    for warning in parsed.warnings:
        log.warning("parse.warning", url=feed_url, warning=warning)
    log.debug("parse.done", url=feed_url, entries=len(parsed.entries))
    return parsed
