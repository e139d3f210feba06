"""Stored text limits and the derived summary.

A 5 MB entry is a broken or hostile feed, not a 5 MB article: stored text is cut at
MAX_TEXT_BYTES (UTF-8), at a paragraph or word boundary, and the original size is kept so
the cut is visible. A summary missing from the feed is the body's first sentences.
"""

from __future__ import annotations

import re

MAX_TEXT_BYTES = 200_000
SUMMARY_CHARS = 300  # a derived summary holds whole sentences up to this length
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？])")
_CJK_ENDS = ("。", "！", "？")


def cap_text(text: str, max_bytes: int = MAX_TEXT_BYTES) -> tuple[str, int | None]:
    """(text cut to at most max_bytes of UTF-8, the original size in bytes when it was cut, else None)."""
    if len(text) * 4 <= max_bytes:  # cheap: no UTF-8 character is longer than 4 bytes
        return text, None
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text, None
    head = data[:max_bytes].decode("utf-8", errors="ignore")
    for boundary in ("\n\n", " "):
        cut = head.rfind(boundary)
        if cut >= len(head) // 2:
            head = head[:cut]
            break
    return head.rstrip(), len(data)


def lead_sentences(paragraphs: list[str], max_chars: int = SUMMARY_CHARS) -> str | None:
    """The first paragraph's leading sentences, up to max_chars (one sentence at least, cut at a word)."""
    if not paragraphs:
        return None
    sentences = [s.strip() for s in _SENTENCE_END.split(paragraphs[0]) if s.strip()]
    summary = ""
    for sentence in sentences:
        joiner = "" if not summary or summary.endswith(_CJK_ENDS) else " "
        candidate = summary + joiner + sentence
        if summary and len(candidate) > max_chars:
            break
        summary = candidate
    if len(summary) > max_chars:
        cut = summary.rfind(" ", 0, max_chars)
        summary = summary[: cut if cut > max_chars // 2 else max_chars].rstrip(" ,;:") + "…"
    return summary or None
