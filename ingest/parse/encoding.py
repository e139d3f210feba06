"""Feed bytes -> text: the encoding real feeds need, decided once, handed to feedparser as UTF-8.

Order: a byte-order mark; the HTTP charset; the XML declaration; then detection. A declared
encoding counts only when the bytes decode with it, and a single-byte declaration loses to bytes
that are valid UTF-8 with multi-byte sequences (servers default to ISO-8859-1; UTF-8 text is
almost never valid by accident the other way). Detection reads UTF-8 first, then takes
windows-1252 for Latin text that reads as Western European (statistical detectors like to call
short Portuguese or French feeds Baltic: "lideranēa"), and only then asks charset_normalizer.
`latin-1`/`ascii` labels decode as windows-1252, as browsers do.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

XML_DECL = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([^\"']*)([\"'])", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# labels that browsers (WHATWG) read as windows-1252, and the GB family read as its superset
_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "iso-8859-1": "windows-1252",
    "iso8859-1": "windows-1252",
    "latin1": "windows-1252",
    "latin-1": "windows-1252",
    "l1": "windows-1252",
    "us-ascii": "windows-1252",
    "ascii": "windows-1252",
}
# Western European letters and the punctuation windows-1252 text carries; others in 0x80-0xFF
# (ð þ ¹ ³ ¤ ...) are what Baltic, Central European or Cyrillic bytes look like read as 1252.
_WESTERN = frozenset(
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜàáâãäåæçèéêëìíîïñòóôõöøùúûüÿßŒœŸŠšŽž‘’‚“”„–—…•€£°«»©®™·¡¿§ªº×½¼¾¢¥\u00a0"
)
MAX_FOREIGN_SHARE = 0.05  # non-Western characters allowed among the non-ASCII ones
MAX_ACCENTED_SHARE = 0.3  # Western text is mostly ASCII letters; Cyrillic read as 1252 is not
SNIFF_BYTES = 200_000


@dataclass(frozen=True)
class Decoded:
    """The document as UTF-8 bytes, the encoding it was read with, and how that was decided."""

    data: bytes
    encoding: str
    source: str  # bom | http | xml | utf-8 | western | detected | fallback


def _codec(label: str | None) -> str | None:
    """A Python codec name for a declared label, or None when Python knows no such encoding."""
    if not label:
        return None
    name = _ALIASES.get(label.strip().lower(), label.strip().lower())
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


_MULTIBYTE = ("utf", "gb", "big5", "shift_jis", "euc", "iso2022", "cp932", "cp949", "cp950", "johab", "hz")


def _is_single_byte(codec: str) -> bool:
    return not codec.startswith(_MULTIBYTE)


def _decode(content: bytes, codec: str) -> str | None:
    if codec.startswith(("utf-16", "utf-32")) and b"\x00" not in content[:4]:
        return None  # "UTF-16" declared in an ASCII-compatible document: the declaration is wrong
    try:
        return content.decode(codec)
    except (UnicodeDecodeError, LookupError):
        if codec == "cp1252":  # the five bytes windows-1252 leaves undefined: read as C1, like browsers
            return content.decode("latin-1")
        return None


def _multibyte_utf8(content: bytes) -> bool:
    """Valid UTF-8 that uses multi-byte sequences (pure ASCII says nothing)."""
    if content.isascii():
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_LETTER = re.compile(r"[^\W\d_]")


def reads_as_western(text: str) -> bool:
    """Whether windows-1252 text looks like a Western European language rather than misread bytes."""
    non_ascii = _NON_ASCII.findall(text)
    if not non_ascii:
        return True
    if any(unicodedata.category(ch) == "Cc" for ch in non_ascii):
        return False  # C1 controls: bytes windows-1252 has no character for
    foreign = sum(ch not in _WESTERN for ch in non_ascii)
    accented = sum(ch.isalpha() for ch in non_ascii)
    letters = len(_LETTER.findall(text))
    return foreign <= MAX_FOREIGN_SHARE * len(non_ascii) and accented <= MAX_ACCENTED_SHARE * max(1, letters)


def _detected(content: bytes) -> tuple[str, str]:
    """(codec, source) for bytes nothing declared usefully."""
    if _decode(content, "utf-8") is not None:
        return "utf-8", "utf-8"
    sample = content[:SNIFF_BYTES]
    as_1252 = sample.decode("cp1252", errors="replace")
    if "\ufffd" not in as_1252 and reads_as_western(as_1252):
        return "cp1252", "western"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    codec = _codec(best.encoding) if best else None
    return (codec, "detected") if codec else ("cp1252", "fallback")


def declared(content: bytes, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """(label, where) of each declaration: the HTTP charset first, then the XML declaration."""
    found = []
    charset = _CHARSET.search(headers.get("content-type", ""))
    if charset:
        found.append((charset.group(1), "http"))
    decl = XML_DECL.match(content[:500])
    if decl:
        found.append((decl.group(2).decode("ascii", "replace"), "xml"))
    return found


def decode_feed(content: bytes, headers: Mapping[str, str]) -> tuple[str, str, str]:
    """(text, codec, source) of a feed document."""
    for bom, codec in _BOMS:
        if content.startswith(bom):
            return content.decode(codec, errors="replace"), codec, "bom"
    for label, where in declared(content, headers):
        named = _codec(label)
        if named is None:
            continue
        if _is_single_byte(named) and _multibyte_utf8(content):
            return content.decode("utf-8"), "utf-8", "utf-8"
        text = _decode(content, named)
        if text is not None:
            return text, named, where
    codec, source = _detected(content)
    text = _decode(content, codec)
    return (text if text is not None else content.decode(codec, errors="replace")), codec, source


def to_utf8(content: bytes, headers: Mapping[str, str]) -> Decoded:
    """The document re-encoded as UTF-8, its XML declaration saying so."""
    text, codec, source = decode_feed(content, headers)
    data = text.lstrip("\ufeff").encode("utf-8")
    data = XML_DECL.sub(rb"\1utf-8\3", data, count=1)
    return Decoded(data, codec, source)
