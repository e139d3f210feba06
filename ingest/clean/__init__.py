"""Clean stage: HTML to paragraphs, residue rules, clean title, canonical URL.

Pure functions, no I/O except reading rule files once (`load_rules`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ingest.clean.html import normalize_space, to_paragraphs
from ingest.clean.rules import Rule, Rules, load_rules, parse_rules
from ingest.clean.title import clean_title
from ingest.clean.url import canonical_url, is_tracking_param
from ingest.models import CleanDocument

__all__ = [
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
    host = urlsplit(url).hostname
    return host.lower() if host else None


def _site_label(host: str | None) -> list[str]:
    """`www.sohu.com` -> ["sohu"]: the URL's name for the site, a title-suffix candidate."""
    if not host:
        return []
    labels = [x for x in host.split(".") if x not in ("www", "m", "amp", "mobile")]
    return [labels[-2]] if len(labels) >= 2 else []


def clean_paragraphs(paragraphs: list[str], rules: Rules, host: str | None) -> tuple[list[str], list[str]]:
    """Apply strip then drop rules to each paragraph: (kept, removed)."""
    kept: list[str] = []
    removed: list[str] = []
    for para in paragraphs:
        stripped = rules.strip_fragments(para, host)
        if not stripped or rules.dropping_rule(stripped, host):
            removed.append(para)
        else:
            kept.append(stripped)
    return kept, removed


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


def clean_document(
    title: str,
    content: str,
    *,
    is_html: bool = True,
    url: str | None = None,
    feed_title: str | None = None,
    summary: str | None = None,
    rules: Rules | None = None,
) -> CleanDocument:
    """The article a reader would call the article; `removed` keeps what rules dropped."""
    rules = rules or load_rules()
    host = _host(url)
    paragraphs = to_paragraphs(content, is_html=is_html)
    original = _original_title(paragraphs, rules)
    kept, removed = clean_paragraphs(paragraphs, rules, host)
    names = list(rules.site_names) + _site_label(host)
    clean = clean_title(
        normalize_space(title), feed_title=feed_title, original_title=original, site_names=names
    )
    if kept and normalize_space(kept[0]).casefold() == clean.casefold():
        removed.append(kept.pop(0))  # the headline repeated as the first paragraph
    return CleanDocument(
        title=clean,
        text="\n\n".join(kept),
        summary=_clean_summary(summary, rules, host),
        url=canonical_url(url) if url else None,
        removed=removed,
    )
