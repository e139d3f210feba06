"""Clean stage: HTML to paragraphs, residue rules, clean title, summary, canonical URL, size cap.

Pure functions, no I/O except reading rule files once (`load_rules`). A whole HTML page (not a
fragment) goes through main-text extraction first, as the full-text path does.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ingest.clean.html import is_whole_page, normalize_space, to_paragraphs
from ingest.clean.rules import Rule, Rules, load_rules, parse_rules
from ingest.clean.site import site_label
from ingest.clean.text import MAX_TEXT_BYTES, cap_text, lead_sentences
from ingest.clean.title import clean_title
from ingest.clean.url import canonical_url, is_tracking_param
from ingest.models import CleanDocument

__all__ = [
    "MAX_TEXT_BYTES",
    "Rule",
    "Rules",
    "canonical_url",
    "clean_document",
    "clean_paragraphs",
    "clean_title",
    "is_tracking_param",
    "load_rules",
    "parse_rules",
    "to_paragraphs",
]

ORIGINAL_TITLE_WINDOW = 6  # an "Original title:" line is only believed near the top


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def clean_paragraphs(paragraphs: list[str], rules: Rules, host: str | None) -> tuple[list[str], list[str]]:
    """Apply strip then drop rules to each paragraph, and the block rules around them: (kept, removed)."""
    return rules.apply(paragraphs, host)


def _original_title(paragraphs: list[str], rules: Rules) -> str | None:
    for para in paragraphs[:ORIGINAL_TITLE_WINDOW]:
        found = rules.original_title_in(para)
        if found:
            return found
    return None


def _clean_summary(summary: str | None, rules: Rules, host: str | None) -> str | None:
    if not summary:
        return None
    kept, _ = clean_paragraphs(to_paragraphs(summary), rules, host)
    return "\n\n".join(kept) or None


def _source(content: str, is_html: bool, url: str | None) -> tuple[list[str], str | None, list[str]]:
    """(paragraphs, the page's title, the page's site names): a whole page is extracted as the
    full-text path does; a fragment (a feed body) is only split into paragraphs."""
    if not (is_html and is_whole_page(content)):
        return to_paragraphs(content, is_html=is_html), None, []
    from ingest.clean.extract import extract_page

    page = extract_page(content, url)
    names = [page.site_name] if page.site_name else []
    return page.paragraphs or to_paragraphs(content), page.title or "", names


def clean_document(
    title: str,
    content: str,
    *,
    is_html: bool = True,
    url: str | None = None,
    feed_title: str | None = None,
    summary: str | None = None,
    rules: Rules | None = None,
    learnt_suffix: str | None = None,
) -> CleanDocument:
    """The article a reader would call the article; `removed` keeps what rules dropped.

    The body is `content`, or the summary when everything in `content` was residue; the summary
    is the feed's own when it has one that is not residue, else the body's first sentences.
    """
    rules = rules or load_rules()
    host = _host(url)
    paragraphs, page_title, page_names = _source(content, is_html, url)
    original = _original_title(paragraphs, rules)
    kept, removed = clean_paragraphs(paragraphs, rules, host)
    own_summary = _clean_summary(summary, rules, host)
    if not kept and own_summary:  # the body was residue only: the next fullest text is the body
        kept, own_summary = own_summary.split("\n\n"), None
    label = site_label(host)
    clean = clean_title(
        normalize_space(title or page_title or ""),
        feed_title=feed_title,
        original_title=original,
        site_names=[*rules.site_names, *page_names, *([label] if label else [])],
        learnt_suffix=learnt_suffix,
        prefix=page_title is not None,  # a page title may start with the site name; feed titles keep theirs
    )
    if len(kept) > 1 and normalize_space(kept[0]).casefold() == clean.casefold():
        removed.append(kept.pop(0))  # the headline repeated as the first paragraph (not the only one)
    text, original_bytes = cap_text("\n\n".join(kept))
    summary_text = own_summary or lead_sentences(kept)
    return CleanDocument(
        title=clean,
        text=text,
        summary=cap_text(summary_text)[0] if summary_text else None,
        url=canonical_url(url) if url else None,
        removed=removed,
        original_bytes=original_bytes,
    )
