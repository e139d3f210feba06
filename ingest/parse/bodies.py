"""Which of an entry's texts is its body: the fullest non-empty one, by the text a reader sees.

Feeds carry up to three: content (content:encoded, atom:content), description/summary, and
more. An empty or image-only content:encoded next to a long description is common in podcast
and CMS feeds; the longest *markup* would pick the empty shell, so lengths are compared after
tags are removed. The feed's summary stays its summary unless it became the body.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

_TAG = re.compile(r"<[^>]*>")
HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")


@dataclass(frozen=True)
class Candidate:
    """One text an entry carries, and whether it is HTML."""

    value: str
    is_html: bool


def visible_chars(candidate: Candidate) -> int:
    """Characters of text a reader would see (tags removed, entities decoded, spaces collapsed)."""
    value = _TAG.sub(" ", candidate.value) if candidate.is_html else candidate.value
    return len("".join(html.unescape(value).split()))


def choose_body(candidates: list[Candidate]) -> Candidate | None:
    """The fullest non-empty candidate (the earlier one on a tie), or None when all are empty."""
    best: Candidate | None = None
    best_size = 0
    for candidate in candidates:
        size = visible_chars(candidate)
        if size > best_size:
            best, best_size = candidate, size
    return best


def own_summary(summary: str | None, body: Candidate | None) -> str | None:
    """The feed's summary, unless it is empty or is the body itself."""
    if not summary or not summary.strip():
        return None
    return None if body is not None and summary.strip() == body.value.strip() else summary
