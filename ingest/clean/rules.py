"""Paragraph-level residue rules, loaded from TOML (see ingest/rules/default.toml).

Rules are anchored (^ or $) and length-bounded by construction: a drop rule
only looks at paragraphs up to `max_chars` long and a strip rule only removes a
fragment that short, so no rule can eat a long real paragraph. A drop rule may
also end a block: `block = "list"` drops the link lines that follow a bare
"Related"/"Trending" heading (a heading before running text stays), and
`block = "rest"` drops a trailing section (reader comments) when what follows is
no longer than the article before it and residue shows near its start.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ingest.errors import ConfigError

MAX_DROP_CHARS = 1000  # no drop rule may look at longer paragraphs than this
MAX_STRIP_CHARS = 300  # no strip rule may remove a longer fragment
MAX_LIST_LINES = 15  # a link list after a heading: at most this many lines
MAX_LINK_WORDS = 20  # a line of such a list: short, and not a sentence
REST_CONFIRM_WINDOW = 10  # a trailing section goes only if residue shows this close after its heading
_SENTENCE_END = (".", "。", "!", "！", ":", ";")
BLOCKS = ("", "list", "rest")
DEFAULT_FILE = "default.toml"


@dataclass(frozen=True)
class Rule:
    """One drop or strip rule; empty `domains` means every site."""

    name: str
    kind: str  # drop | strip
    pattern: re.Pattern[str]
    max_chars: int
    domains: tuple[str, ...] = ()
    at_end: bool = False  # strip rules: removes a trailing (True) or leading (False) fragment
    block: str = ""  # drop rules: "list" also drops the link lines after it, "rest" all that follows

    def applies_to(self, host: str | None) -> bool:
        """Scoped rules apply to their domains and subdomains only."""
        if not self.domains:
            return True
        return host is not None and any(host == d or host.endswith("." + d) for d in self.domains)


@dataclass(frozen=True)
class Rules:
    """Every rule in force, plus what title cleaning needs."""

    drop: tuple[Rule, ...] = ()
    strip: tuple[Rule, ...] = ()
    original_title: tuple[re.Pattern[str], ...] = ()
    site_names: tuple[str, ...] = ()
    sources: tuple[str, ...] = field(default=())

    def merged(self, other: Rules) -> Rules:
        """These rules followed by `other`'s (site files add to the defaults)."""
        return Rules(
            self.drop + other.drop,
            self.strip + other.strip,
            self.original_title + other.original_title,
            self.site_names + other.site_names,
            self.sources + other.sources,
        )

    def original_title_in(self, paragraph: str) -> str | None:
        """The title an "Original title: ..." paragraph gives, if it is one."""
        for pattern in self.original_title:
            match = pattern.search(paragraph)
            if match:
                return match.group("title").strip() or None
        return None

    @cached_property
    def _prefilter(self) -> _Prefilter:
        return _Prefilter.build(self)

    def strip_fragments(self, paragraph: str, host: str | None) -> str:
        """Remove leading/trailing residue fragments until none is left."""
        if not self._prefilter.may_strip(paragraph, host):
            return paragraph
        for _ in range(8):
            before = paragraph
            for rule in self.strip:
                if rule.applies_to(host):
                    paragraph = _strip_one(rule, paragraph)
            if paragraph == before:
                break
        return paragraph

    def dropping_rule(self, paragraph: str, host: str | None) -> str | None:
        """Name of the first drop rule matching the paragraph, if any."""
        rule = self._dropping(paragraph, host)
        return rule.name if rule else None

    def _dropping(self, paragraph: str, host: str | None) -> Rule | None:
        if not self._prefilter.may_drop(paragraph, host):
            return None
        length = len(paragraph)
        for rule in self.drop:
            if length <= rule.max_chars and rule.applies_to(host) and rule.pattern.search(paragraph):
                return rule
        return None

    def apply(self, paragraphs: list[str], host: str | None) -> tuple[list[str], list[str]]:
        """Strip then drop rules on each paragraph, blocks included: (kept, removed)."""
        kept: list[str] = []
        removed: list[str] = []
        index = 0
        while index < len(paragraphs):
            para = paragraphs[index]
            stripped = self.strip_fragments(para, host)
            rule = self._dropping(stripped, host) if stripped else None
            index += 1
            if stripped and rule is None:
                kept.append(stripped)
                continue
            end = self._block_span(rule, stripped, paragraphs, index, kept, host)
            if end is None:
                kept.append(stripped)  # "More from NBC's TODAY:" before a quoted passage: no list follows
                continue
            removed.append(para)
            removed.extend(paragraphs[index:end])
            index = end
        return kept, removed

    def _block_span(
        self,
        rule: Rule | None,
        heading: str,
        paragraphs: list[str],
        start: int,
        kept: list[str],
        host: str | None,
    ) -> int | None:
        """End of what the dropped paragraph takes with it; None when a list heading is really a lead-in."""
        if rule is None or not rule.block:
            return start
        end = self._block_end(rule.block, paragraphs, start, kept, host)
        if rule.block == "list" and end == start and _leads_in(heading, paragraphs, start):
            return None
        return end

    def _block_end(
        self, block: str, paragraphs: list[str], start: int, kept: list[str], host: str | None
    ) -> int:
        """Where the block a heading at `start - 1` opened ends (exclusive); `start` when none.

        A list runs over the link lines that follow, short of one that introduces running text
        (a subheading after the list). The rest of the text goes only when it is
        no longer than the article before it and a line near its start is residue too (a
        "Reply" or "2 hours ago"): a "Comment" column header in a table stays.
        """
        if block == "list":
            end = start
            while end < len(paragraphs) and end - start < MAX_LIST_LINES and _is_link_line(paragraphs[end]):
                if end + 1 < len(paragraphs) and not _is_link_line(paragraphs[end + 1]):
                    break  # a short line before running text is the article's next subheading
                if self._dropping(paragraphs[end], host):
                    break  # another rule's line (a "Comments" heading) is handled by that rule
                end += 1
            return end
        before = sum(len(p.split()) for p in kept)
        after = sum(len(p.split()) for p in paragraphs[start:])
        window = paragraphs[start : start + REST_CONFIRM_WINDOW]
        confirmed = any(self._dropping(self.strip_fragments(p, host), host) for p in window)
        return len(paragraphs) if kept and after <= before and confirmed else start


def _leads_in(heading: str, paragraphs: list[str], start: int) -> bool:
    """A heading ending in a colon with running text after it introduces a passage, not a list."""
    return (
        heading.rstrip().endswith((":", "："))
        and start < len(paragraphs)
        and not _is_link_line(paragraphs[start])
    )


def _is_link_line(paragraph: str) -> bool:
    return len(paragraph.split()) <= MAX_LINK_WORDS and not paragraph.rstrip().endswith(_SENTENCE_END)


def _union(rules: list[Rule]) -> re.Pattern[str] | None:
    """One alternation of several rules' patterns, each keeping its own case flag."""
    if not rules:
        return None
    parts = [f"(?{'i' if r.pattern.flags & re.IGNORECASE else ''}:{r.pattern.pattern})" for r in rules]
    try:
        return re.compile("|".join(parts))
    except re.error:  # e.g. two rules reuse a group name: no prefilter, every rule runs
        return re.compile("")


@dataclass(frozen=True)
class _Union:
    """Start-anchored rules tried with one match(); end-anchored ones each search their own bounded tail.

    (A union of tail rules would search the widest window with every alternative: slower, not faster.)
    """

    head: re.Pattern[str] | None
    tails: tuple[Rule, ...]

    @classmethod
    def of(cls, rules: list[Rule]) -> _Union:
        heads = [r for r in rules if r.pattern.pattern.startswith("^")]
        tails = tuple(r for r in rules if not r.pattern.pattern.startswith("^"))
        return cls(_union(heads), tails)

    def hits(self, paragraph: str) -> bool:
        if self.head is not None and self.head.match(paragraph):
            return True
        size = len(paragraph)
        return any(r.pattern.search(paragraph, max(0, size - r.max_chars)) for r in self.tails)


@dataclass(frozen=True)
class _Prefilter:
    """Unions of the unscoped rules: one or two searches say whether any rule could fire.

    Most paragraphs are clean; they pay a few regex calls instead of thirty.
    """

    drop: _Union
    drop_max: int
    strip: _Union
    scoped: bool

    @classmethod
    def build(cls, rules: Rules) -> _Prefilter:
        drop = [r for r in rules.drop if not r.domains]
        strip = [r for r in rules.strip if not r.domains]
        scoped = any(r.domains for r in rules.drop + rules.strip)
        return cls(_Union.of(drop), max((r.max_chars for r in drop), default=0), _Union.of(strip), scoped)

    def may_drop(self, paragraph: str, host: str | None) -> bool:
        if self.scoped and host:
            return True
        return len(paragraph) <= self.drop_max and self.drop.hits(paragraph)

    def may_strip(self, paragraph: str, host: str | None) -> bool:
        return bool(self.scoped and host) or self.strip.hits(paragraph)


def _strip_one(rule: Rule, paragraph: str) -> str:
    """Apply one strip rule; only the bounded head or tail is searched."""
    if rule.at_end:
        offset = max(0, len(paragraph) - rule.max_chars)
        match = rule.pattern.search(paragraph, offset)
        if match and match.end() == len(paragraph) and len(match.group(0)) <= rule.max_chars:
            return paragraph[: match.start()].rstrip()
        return paragraph
    match = rule.pattern.match(paragraph)
    if match and len(match.group(0)) <= rule.max_chars:
        return paragraph[match.end() :].lstrip()
    return paragraph


def _compile(raw: str, where: str, *, case_sensitive: bool = False) -> re.Pattern[str]:
    flags = 0 if case_sensitive else re.IGNORECASE
    try:
        return re.compile(raw, flags)
    except re.error as exc:
        raise ConfigError(f"clean rules: {where}: bad pattern: {exc}") from None


def _rule(entry: dict[str, Any], kind: str, source: str, index: int) -> Rule:
    """Validate one [[drop]]/[[strip]] table: anchored, bounded, compiled."""
    name = str(entry.get("name") or f"{kind}-{index}")
    where = f"{source}: {kind} rule {name!r}"
    raw = entry.get("pattern")
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"clean rules: {where}: `pattern` is required")
    limit = MAX_DROP_CHARS if kind == "drop" else MAX_STRIP_CHARS
    max_chars = int(entry.get("max_chars", 200))
    if not 0 < max_chars <= limit:
        raise ConfigError(f"clean rules: {where}: max_chars must be 1..{limit}")
    at_end = raw.endswith("$") and not raw.startswith("^")
    if kind == "strip" and not (raw.startswith("^") or raw.endswith("$")):
        raise ConfigError(f"clean rules: {where}: strip patterns must start with ^ or end with $")
    if kind == "drop" and not (raw.startswith("^") or raw.endswith("$")):
        raise ConfigError(f"clean rules: {where}: drop patterns must start with ^ or end with $")
    domains = tuple(str(d).lower().lstrip(".") for d in entry.get("domains", ()))
    pattern = _compile(raw, where, case_sensitive=bool(entry.get("case_sensitive", False)))
    block = str(entry.get("block", ""))
    if block not in BLOCKS or (block and kind != "drop"):
        raise ConfigError(f'clean rules: {where}: block must be "list" or "rest", on drop rules only')
    return Rule(name, kind, pattern, max_chars, domains, at_end, block)


def parse_rules(text: str, source: str = "<string>") -> Rules:
    """Rules from TOML text; a bad file raises ConfigError naming the rule."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"clean rules: {source}: {exc}") from None
    drop = tuple(_rule(e, "drop", source, i) for i, e in enumerate(data.get("drop", [])))
    strip = tuple(_rule(e, "strip", source, i) for i, e in enumerate(data.get("strip", [])))
    titles = tuple(
        _compile(e["pattern"], f"{source}: original_title") for e in data.get("original_title", [])
    )
    if any("title" not in p.groupindex for p in titles):
        raise ConfigError(f"clean rules: {source}: original_title patterns need a (?P<title>...) group")
    names = tuple(str(n) for n in data.get("site_names", []))
    return Rules(drop, strip, titles, names, (source,))


@lru_cache(maxsize=1)
def default_rules() -> Rules:
    """The bundled generic rules, parsed once per process."""
    text = (Path(__file__).resolve().parent.parent / "rules" / DEFAULT_FILE).read_text(encoding="utf-8")
    return parse_rules(text, DEFAULT_FILE)


@lru_cache(maxsize=8)
def _site_rules(path: Path) -> Rules:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"clean rules: cannot read {path}: {exc.strerror}") from None
    return parse_rules(text, str(path))


def load_rules(path: Path | None = None) -> Rules:
    """The bundled rules, plus a site-specific file (INGEST_CLEAN_RULES) when given."""
    if path is None:
        return default_rules()
    return default_rules().merged(_site_rules(Path(path)))
