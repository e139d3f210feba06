"""HTML (or plain text) to paragraphs: what a reader sees, one string per paragraph.

Nesting is bounded before parsing: lexbor's tree builder walks the stack of open elements for
every block start tag, so `"<div>" * n` costs O(n^2) (11.6 s at n = 40k). Tags nested deeper
than MAX_DEPTH are dropped (their text stays), which keeps parsing linear in the input.
"""

from __future__ import annotations

import html as html_lib
import re

from selectolax.lexbor import LexborHTMLParser

PARA = "\u2029"  # paragraph separator: marks block boundaries in the extracted text
LINE = "\u2028"  # line separator: marks <br>
DROP_TAGS = [
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "aside",
    "footer",
    "form",
    "button",
    "iframe",
    "svg",
    "canvas",
    "select",
    "input",
    "textarea",
    "figure",
    "figcaption",
    "object",
    "embed",
    "audio",
    "video",
    "picture",
    "head",
    "menu",
    "dialog",
]
BLOCK_TAGS = (
    "p,div,section,article,main,header,h1,h2,h3,h4,h5,h6,li,ul,ol,dl,dt,dd,blockquote,pre,"
    "table,tr,td,th,caption,hr,address,center,details,summary"
)
_LOOKS_HTML = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*\b[^>]*|/[a-zA-Z][a-zA-Z0-9]*\s*|!--.*?--)>", re.S)
_DOUBLE_BR = re.compile(f"{LINE}\\s*{LINE}")
_BLANK_LINE = re.compile(r"\n\s*\n")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\ufeff\u00ad]")
# a tag as the depth bound sees it: stops at the next "<", so unclosed tags cannot make it rescan
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)[^<>]*>")
# elements that never nest (void) or close themselves when a sibling opens: they add no depth
_FLAT = frozenset(
    (
        *("area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source"),
        *("track", "wbr", "keygen", "basefont", "frame", "isindex", "p", "li", "dt", "dd", "option"),
        *("optgroup", "tr", "td", "th", "tbody", "thead", "tfoot", "colgroup", "caption", "rb", "rt"),
        *("rtc", "rp", "html", "head", "body"),
    )
)
MAX_DEPTH = 256  # real pages nest 20-60 deep
_WHOLE_PAGE = re.compile(
    r"^\s*(?:<!--.*?-->\s*)*(?:<!doctype\s+html[^>]*>\s*(?:<!--.*?-->\s*)*)?<html[\s>].{0,4000}?<head[\s>]",
    re.IGNORECASE | re.DOTALL,
)


def normalize_space(text: str) -> str:
    """Collapse every run of whitespace (NBSP included) to one space; drop zero-width characters."""
    return " ".join(_INVISIBLE.sub("", text).split())


def looks_like_html(content: str) -> bool:
    """Feeds say `html` for plain text often enough that the claim is checked."""
    return bool(_LOOKS_HTML.search(content))


def bound_depth(html: str, max_depth: int = MAX_DEPTH) -> tuple[str, int]:
    """The markup with tags nested deeper than `max_depth` removed, and how many were removed."""
    if html.count("<") <= max_depth:
        return html, 0
    out: list[str] = []
    pos = depth = removed = 0
    for match in _TAG.finditer(html):
        name = match.group(2).lower()
        if name in _FLAT or match.group(0).endswith("/>"):
            continue
        closing = bool(match.group(1))
        depth += 0 if closing else 1
        if depth > max_depth:
            out.append(html[pos : match.start()])
            pos = match.end()
            removed += 1
        if closing:
            depth = max(0, depth - 1)
    if not removed:
        return html, 0
    out.append(html[pos:])
    return "".join(out), removed


def is_whole_page(html: str) -> bool:
    """A whole HTML document (<html> with a <head>), not a fragment of an article body."""
    return bool(_WHOLE_PAGE.match(html[:8000]))


def markup_text(fragment: str) -> str:
    """The text of an inline fragment (a title): tags removed, script and style with their content."""
    return " ".join(html_paragraphs(fragment))


def html_paragraphs(html: str, *, max_depth: int = MAX_DEPTH) -> list[str]:
    """Block elements and <br><br> end paragraphs; script, navigation, captions and forms are dropped."""
    html, _ = bound_depth(html, max_depth)
    tree = LexborHTMLParser(html.replace(PARA, " ").replace(LINE, " "))
    tree.strip_tags(DROP_TAGS)
    root = tree.body or tree.root
    if root is None:
        return []
    for node in root.css(BLOCK_TAGS):
        node.insert_before(PARA)
        node.insert_after(PARA)
    for node in root.css("br"):
        node.insert_before(LINE)
    text = root.text(separator="", deep=True)
    paragraphs: list[str] = []
    for block in text.split(PARA):
        for chunk in _DOUBLE_BR.split(block):
            para = normalize_space(chunk.replace(LINE, " "))
            if para:
                paragraphs.append(para)
    return paragraphs


def text_paragraphs(text: str) -> list[str]:
    """Blank lines end paragraphs; without any blank line, every line is one."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chunks = _BLANK_LINE.split(text) if _BLANK_LINE.search(text) else text.split("\n")
    return [para for para in (normalize_space(chunk) for chunk in chunks) if para]


def to_paragraphs(content: str, *, is_html: bool = True) -> list[str]:
    """Paragraphs of an entry body, whichever form it came in."""
    if not is_html:
        return text_paragraphs(content)
    if looks_like_html(content):
        return html_paragraphs(content)
    return text_paragraphs(html_lib.unescape(content))
