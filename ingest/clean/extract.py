"""Main text, author and publication date of a full article page.

trafilatura (default balance, with its readability/jusText fallbacks) finds the
article body; a recall-favouring second pass runs only when the first one is
clearly too short; a leading repeat of the page title and the page's own URL
are dropped. The caller then applies the paragraph rules, as for any feed body.
Metadata comes from trafilatura's extractor (JSON-LD, meta tags) and htmldate.
Pure: the caller fetches the page.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.clean.html import normalize_space
from ingest.log import get_logger

log = get_logger(__name__)

MIN_BODY_CHARS = 200  # a first pass shorter than this is retried with recall favoured
MAX_AUTHOR_CHARS = 120
HEADLINE_WINDOW = 3  # the headline is looked for among the first paragraphs only
_WORDS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class ExtractedPage:
    """What a page says about its article: body paragraphs and the metadata we keep."""

    paragraphs: list[str]
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    site_name: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)

    def word_count(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


def _paragraphs(text: str | None) -> list[str]:
    if not text:
        return []
    return [p for p in (normalize_space(line) for line in text.split("\n")) if p]


def _body(html: str | Any, url: str | None) -> list[str]:
    """trafilatura's main text; a too-short answer is retried with recall favoured."""
    import trafilatura

    options: dict[str, Any] = {
        "url": url,
        "include_comments": False,
        "include_tables": True,
        "deduplicate": False,
        "with_metadata": False,
    }
    first = _paragraphs(trafilatura.extract(html, **options))
    if sum(len(p) for p in first) >= MIN_BODY_CHARS:
        return first
    second = _paragraphs(trafilatura.extract(html, favor_recall=True, **options))
    return second if sum(len(p) for p in second) > sum(len(p) for p in first) else first


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _author(value: str | None) -> str | None:
    if not value:
        return None
    author = normalize_space(value.replace(";", ", "))
    return author if 0 < len(author) <= MAX_AUTHOR_CHARS else None


def _page_title(tree: Any) -> str | None:
    """og:title (or twitter:title), else <title>: as the page states it, site suffix and all.

    trafilatura's own title takes the first part of a split <title>, which is the site name
    when the name comes first; the clean stage cuts names with evidence instead.
    """
    for name in ("og:title", "twitter:title"):
        found = tree.xpath(f'//meta[@property="{name}" or @name="{name}"]/@content')
        if found and normalize_space(str(found[0])):
            return normalize_space(str(found[0]))
    node = tree.find(".//head//title")
    return normalize_space(node.text_content()) or None if node is not None else None


def _metadata(tree: Any, url: str | None) -> dict[str, Any]:
    """Title, author, date, language and site name from meta tags, JSON-LD and htmldate."""
    from trafilatura.metadata import extract_metadata

    title = _page_title(tree)  # read before trafilatura works on the tree
    try:
        meta = extract_metadata(tree, default_url=url, extensive=True)
    except Exception as exc:
        log.warning("page_metadata_failed", url=url, error=repr(exc))
        return {}
    return {
        "title": title or meta.title,
        "author": _author(meta.author),
        "published_at": _date(meta.date),
        "language": meta.language,
        "site_name": meta.sitename,
    }


def _key(text: str) -> str:
    return _WORDS.sub(" ", text.casefold()).strip()


def drop_headline(paragraphs: list[str], title: str | None) -> list[str]:
    """Leading paragraphs that repeat the page's title (with or without its site suffix) go."""
    if not title or not paragraphs:
        return paragraphs
    title_key = _key(title)
    kept = list(paragraphs)
    for index, para in enumerate(paragraphs[:HEADLINE_WINDOW]):
        key = _key(para)
        if key and (key == title_key or (len(key) >= 0.5 * len(title_key) and key in title_key)):
            return kept[:index] + kept[index + 1 :]
    return kept


def extract_page(html: str | bytes, url: str | None = None) -> ExtractedPage:
    """The article on a full HTML page; empty paragraphs when none is found."""
    from trafilatura.utils import load_html

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = load_html(html)
    if tree is None:
        return ExtractedPage([])
    meta = _metadata(tree, url)
    paragraphs = [p for p in drop_headline(_body(html, url), meta.get("title")) if p != url]
    return ExtractedPage(paragraphs, **meta)
