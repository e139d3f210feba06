"""Match one article against many subscriptions at once.

Each subscription is indexed under a small "cover": index keys such that the
query cannot match unless at least one of them is in the article (for
`a AND b` one of the two, for `a OR b` both). An article is tokenized once; its
keys are looked up in the index (and its words run through one Aho-Corasick
automaton of every wildcard prefix), which yields the candidates. Each
candidate then passes a set-inclusion pre-filter (`must`, the keys that every
match requires) before its tree is evaluated. Queries with no cover (only
NOT, say) are kept in a short always-evaluate set.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import ahocorasick

from ingest.log import get_logger
from ingest.match.document import MatchDocument, PreparedDocument
from ingest.match.nodes import (
    And,
    Domain,
    Feed,
    Lang,
    Near,
    Node,
    Or,
    Phrase,
    Prefix,
    Term,
    Title,
)
from ingest.match.query import Query, parse_query
from ingest.match.text import is_char_token
from ingest.models import Match

log = get_logger(__name__)

Cover = list[tuple[str, str]]  # ("k", index key) or ("p", wildcard prefix)
_FIELD_PENALTY = 10_000  # prefer words over lang:/feed:/domain: keys, which many queries share
_CHAR_PENALTY = 100  # a single CJK character is a poor key
_SEP = "\x01"


@dataclass(frozen=True)
class _Sub:
    id: str
    query: Query
    must: frozenset[str]
    cover: tuple[tuple[str, str], ...] | None
    prefixes: tuple[str, ...]
    simple_terms: tuple[str, ...] | None  # set: an AND of plain words and fields, decided by `must`


def _is_simple(node: Node) -> bool:
    if isinstance(node, And):
        return all(_is_simple(c) for c in node.children)
    return isinstance(node, Term | Lang | Domain) or (isinstance(node, Feed) and node.identity is None)


def _phrase_keys(node: Phrase) -> list[str]:
    """Index keys a phrase may be found by: its words, or bigrams of adjacent CJK characters."""
    keys = node.keys
    options = [k for k in keys if not is_char_token(k)]
    if node.slop is None:
        options += [a + b for a, b in pairwise(keys) if is_char_token(a) and is_char_token(b)]
    return options or list(keys)


class Matcher:
    """Subscriptions indexed for one-pass matching of articles."""

    def __init__(self, subscriptions: Iterable[tuple[str, str]] = ()) -> None:
        self._subs: dict[str, _Sub] = {}
        self._index: dict[str, set[str]] = {}
        self._prefix_index: dict[str, set[str]] = {}
        self._prefix_refs: Counter[str] = Counter()
        self._always: set[str] = set()
        self._automaton: ahocorasick.Automaton | None = None
        self._automaton_stale = False
        for sub_id, query in subscriptions:
            self.add(sub_id, query)

    def __len__(self) -> int:
        return len(self._subs)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._subs

    def add(self, sub_id: str, query: str | Query) -> Query:
        """Index a subscription (replacing one with the same id); a bad query raises QueryError."""
        parsed = query if isinstance(query, Query) else parse_query(query)
        if sub_id in self._subs:
            self.remove(sub_id)
        root = parsed.root
        cover = self._cover(root)
        prefixes = tuple(sorted({leaf.prefix for leaf in _all_prefixes(root)}))
        simple = tuple(dict.fromkeys(leaf.original for leaf in parsed.leaves())) if _is_simple(root) else None
        sub = _Sub(sub_id, parsed, root.must(), tuple(cover) if cover is not None else None, prefixes, simple)
        self._subs[sub_id] = sub
        self._link(sub)
        return parsed

    def remove(self, sub_id: str) -> bool:
        """Forget a subscription; False if it was not there."""
        sub = self._subs.pop(sub_id, None)
        if sub is None:
            return False
        self._unlink(sub)
        return True

    def _link(self, sub: _Sub) -> None:
        if sub.cover is None:
            self._always.add(sub.id)
        else:
            for kind, key in sub.cover:
                target = self._index if kind == "k" else self._prefix_index
                target.setdefault(key, set()).add(sub.id)
        for prefix in sub.prefixes:
            if not self._prefix_refs[prefix]:
                self._automaton_stale = True
            self._prefix_refs[prefix] += 1

    def _unlink(self, sub: _Sub) -> None:
        self._always.discard(sub.id)
        for kind, key in sub.cover or ():
            target = self._index if kind == "k" else self._prefix_index
            ids = target.get(key)
            if ids is not None:
                ids.discard(sub.id)
                if not ids:
                    del target[key]
        for prefix in sub.prefixes:
            self._prefix_refs[prefix] -= 1
            if self._prefix_refs[prefix] <= 0:
                del self._prefix_refs[prefix]
                self._automaton_stale = True

    def _cost(self, cover: Cover) -> int:
        total = 0
        for kind, key in cover:
            postings = self._index if kind == "k" else self._prefix_index
            total += len(postings.get(key, ())) + 1
            if key.startswith("\x00"):
                total += _FIELD_PENALTY
            elif kind == "k" and len(key) == 1 and is_char_token(key):
                total += _CHAR_PENALTY
        return total

    def _cover(self, node: Node) -> Cover | None:
        """The cheapest key set at least one of which any match must contain; None if there is none."""
        if isinstance(node, Term):
            return [("k", node.key)]
        if isinstance(node, Prefix):
            return [("p", node.prefix)]
        if isinstance(node, Phrase):
            return min(([("k", k)] for k in _phrase_keys(node)), key=self._cost)
        if isinstance(node, Lang | Feed | Domain):
            return [("k", next(iter(node.must())))]
        if isinstance(node, Title):
            return self._cover(node.child)
        if isinstance(node, And | Near):
            parts = node.children if isinstance(node, And) else [node.left, node.right]
            options = [c for c in map(self._cover, parts) if c is not None]
            return min(options, key=self._cost) if options else None
        if isinstance(node, Or):
            union: Cover = []
            for child in node.children:
                part = self._cover(child)
                if part is None:
                    return None
                union += [item for item in part if item not in union]
            return union
        return None  # Not

    def _prefix_automaton(self) -> ahocorasick.Automaton | None:
        if self._automaton_stale:
            self._automaton = None
            if self._prefix_refs:
                automaton = ahocorasick.Automaton()
                for prefix in self._prefix_refs:
                    automaton.add_word(_SEP + prefix, prefix)
                automaton.make_automaton()
                self._automaton = automaton
            self._automaton_stale = False
            log.debug("match.automaton_built", prefixes=len(self._prefix_refs))
        return self._automaton

    def prepare(self, doc: MatchDocument) -> PreparedDocument:
        """Tokenize the article once and find every indexed wildcard prefix in it."""
        prepared = PreparedDocument(doc, known_prefixes=self._prefix_refs.keys())
        automaton = self._prefix_automaton()
        if automaton is not None and prepared.bases:
            bases = list(prepared.bases)
            starts: list[int] = []
            offset = 0
            for base in bases:
                starts.append(offset)
                offset += len(base) + 1
            haystack = _SEP + _SEP.join(bases)
            for end, prefix in automaton.iter(haystack):
                prepared.record_prefix(prefix, bases[bisect_right(starts, end - len(prefix)) - 1])
        return prepared

    def candidates(self, prepared: PreparedDocument) -> set[str]:
        """Ids of the subscriptions worth evaluating for this article."""
        found = set(self._always)
        index = self._index
        for key in prepared.keys:
            ids = index.get(key)
            if ids:
                found |= ids
        for prefix in prepared.prefix_hits:
            ids = self._prefix_index.get(prefix)
            if ids:
                found |= ids
        return found

    def match(self, doc: MatchDocument) -> list[Match]:
        """Every subscription the article matches, ordered by subscription id."""
        prepared = self.prepare(doc)
        keys = prepared.keys
        subs = self._subs
        out: list[Match] = []
        for sub_id in self.candidates(prepared):
            sub = subs[sub_id]
            if not sub.must <= keys:
                continue
            if sub.simple_terms is not None:
                out.append(Match(sub_id, list(sub.simple_terms)))
            elif sub.query.root.evaluate(prepared):
                out.append(Match(sub_id, _matched_terms(sub.query, prepared)))
        out.sort(key=lambda m: m.subscription_id)
        return out


def _all_prefixes(node: Node) -> list[Prefix]:
    """Every wildcard in the tree, negated ones included (the automaton must know them all)."""
    if isinstance(node, Prefix):
        return [node]
    children: list[Node] = []
    if isinstance(node, And | Or):
        children = node.children
    elif isinstance(node, Near):
        children = [node.left, node.right]
    elif hasattr(node, "child"):
        children = [node.child]
    return [p for c in children for p in _all_prefixes(c)]


def _matched_terms(query: Query, prepared: PreparedDocument) -> list[str]:
    terms: list[str] = []
    query.root.collect(prepared, terms)
    return terms


def match_query(query: str | Query, doc: MatchDocument, subscription_id: str = "") -> Match | None:
    """Match a single query (the CLI's `ingest match`); None when it does not match."""
    parsed = query if isinstance(query, Query) else parse_query(query)
    prepared = PreparedDocument(doc)
    if not parsed.root.evaluate(prepared):
        return None
    return Match(subscription_id, _matched_terms(parsed, prepared))


__all__ = ["Matcher", "match_query"]
