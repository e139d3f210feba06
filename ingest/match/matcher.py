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
from dataclasses import dataclass, field
from itertools import pairwise

import ahocorasick

from ingest.log import get_logger
from ingest.match.document import MatchDocument, PreparedDocument
from ingest.match.nodes import And, Domain, Feed, Lang, Near, Node, Or, Phrase, Prefix, Term, Title
from ingest.match.query import Query, parse_query
from ingest.match.text import is_char_token
from ingest.models import Match

log = get_logger(__name__)

Item = tuple[str, str]  # ("k", index key) or ("p", wildcard prefix)
Clause = tuple[Item, ...]  # one item, or two keys that must both be present
Cover = list[Clause]  # the query cannot match unless one clause is present
MAX_CLAUSES = 16
_FIELD_PENALTY = 10_000  # prefer words over lang:/feed:/domain: keys, which many queries share
_CHAR_PENALTY = 100  # a single CJK character is a poor key
_SEP = "\x01"


@dataclass(eq=False)
class _Entry:
    """One distinct query text and the subscriptions that share it (evaluated once per article)."""

    query: Query
    must: frozenset[str]
    cover: tuple[Clause, ...] | None  # any clause present makes it a candidate; None: always evaluate
    prefixes: tuple[str, ...]
    simple_terms: tuple[str, ...] | None  # set: an AND of plain words and fields, decided by `must`
    ids: set[str] = field(default_factory=set)


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
        self._entries: dict[str, _Entry] = {}  # query text -> entry
        self._sub_query: dict[str, str] = {}  # subscription id -> query text
        self._pairs: dict[str, dict[str, set[str]]] = {}  # key -> key -> query texts needing both
        self._index: dict[str, set[str]] = {}  # key -> query texts
        self._prefix_index: dict[str, set[str]] = {}  # wildcard prefix -> query texts
        self._prefix_refs: Counter[str] = Counter()
        self._always: set[str] = set()
        self._automaton: ahocorasick.Automaton | None = None
        self._automaton_stale = False
        for sub_id, query in subscriptions:
            self.add(sub_id, query)

    def __len__(self) -> int:
        return len(self._sub_query)

    def __contains__(self, sub_id: object) -> bool:
        return sub_id in self._sub_query

    def add(self, sub_id: str, query: str | Query) -> Query:
        """Index a subscription (replacing one with the same id); a bad query raises QueryError."""
        text = query.text if isinstance(query, Query) else query
        if self._sub_query.get(sub_id) == text:
            return self._entries[text].query
        entry = self._entries.get(text) or self._new_entry(query)
        if sub_id in self._sub_query:
            self.remove(sub_id)
        entry.ids.add(sub_id)
        self._sub_query[sub_id] = text
        return entry.query

    def remove(self, sub_id: str) -> bool:
        """Forget a subscription; False if it was not there."""
        text = self._sub_query.pop(sub_id, None)
        if text is None:
            return False
        entry = self._entries[text]
        entry.ids.discard(sub_id)
        if not entry.ids:
            del self._entries[text]
            self._unlink(text, entry)
        return True

    def _new_entry(self, query: str | Query) -> _Entry:
        parsed = query if isinstance(query, Query) else parse_query(query)
        root = parsed.root
        must = root.must()
        cover = self._cover(root)
        prefixes = tuple(sorted({leaf.prefix for leaf in _all_prefixes(root)}))
        simple = tuple(dict.fromkeys(leaf.original for leaf in parsed.leaves())) if _is_simple(root) else None
        entry = _Entry(parsed, must, tuple(cover) if cover is not None else None, prefixes, simple)
        self._entries[parsed.text] = entry
        self._link(parsed.text, entry)
        return entry

    def _link(self, text: str, entry: _Entry) -> None:
        if entry.cover is None:
            self._always.add(text)
        for clause in entry.cover or ():
            if len(clause) == 2:
                (_, first), (_, second) = clause
                self._pairs.setdefault(first, {}).setdefault(second, set()).add(text)
            else:
                kind, key = clause[0]
                (self._index if kind == "k" else self._prefix_index).setdefault(key, set()).add(text)
        for prefix in entry.prefixes:
            if not self._prefix_refs[prefix]:
                self._automaton_stale = True
            self._prefix_refs[prefix] += 1

    def _unlink(self, text: str, entry: _Entry) -> None:
        self._always.discard(text)
        for clause in entry.cover or ():
            if len(clause) == 2:
                (_, first), (_, second) = clause
                inner = self._pairs[first]
                _discard(inner, second, text)
                if not inner:
                    del self._pairs[first]
            else:
                kind, key = clause[0]
                _discard(self._index if kind == "k" else self._prefix_index, key, text)
        for prefix in entry.prefixes:
            self._prefix_refs[prefix] -= 1
            if self._prefix_refs[prefix] <= 0:
                del self._prefix_refs[prefix]
                self._automaton_stale = True

    def _item_cost(self, item: Item) -> int:
        kind, key = item
        postings = self._index if kind == "k" else self._prefix_index
        cost = len(postings.get(key, ())) + 1
        if key.startswith("\x00"):
            cost += _FIELD_PENALTY
        elif kind == "k" and len(key) == 1 and is_char_token(key):
            cost += _CHAR_PENALTY
        return cost

    def _cost(self, cover: Cover) -> int:
        """Roughly how many other queries share these postings; a pair of keys is nearly free."""
        return sum(1 if len(clause) == 2 else self._item_cost(clause[0]) for clause in cover)

    def _cover(self, node: Node) -> Cover | None:
        """Clauses one of which every match contains; None when no such set exists (NOT)."""
        if isinstance(node, Term):
            return [(("k", node.key),)]
        if isinstance(node, Prefix):
            return [(("p", node.prefix),)]
        if isinstance(node, Phrase):
            keys = sorted({("k", k) for k in _phrase_keys(node)}, key=self._item_cost)
            return [tuple(sorted(keys[:2], key=_pair_order))]
        if isinstance(node, Lang | Feed | Domain):
            return [(("k", next(iter(node.must()))),)]
        if isinstance(node, Title):
            return self._cover(node.child)
        if isinstance(node, And | Near):
            return self._and_cover(node.children if isinstance(node, And) else [node.left, node.right])
        if isinstance(node, Or):
            union: Cover = []
            for child in node.children:
                part = self._cover(child)
                if part is None:
                    return None
                union += [clause for clause in part if clause not in union]
            return union
        return None  # Not

    def _and_cover(self, children: list[Node]) -> Cover | None:
        """The cheapest child's clauses, each paired with a key of a second child when that stays small."""
        covers = sorted((c for c in map(self._cover, children) if c is not None), key=self._cost)
        if not covers:
            return None
        best = covers[0]
        if all(len(clause) == 2 for clause in best):
            return best
        for other in covers[1:]:
            if len(best) * len(other) <= MAX_CLAUSES:
                product = list(dict.fromkeys(_pair(a, b) for a in best for b in other))
                if all(len(clause) == 2 for clause in product):
                    return product
        return best

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
        """Query texts worth evaluating for this article."""
        found = set(self._always)
        keys = prepared.keys
        index, pairs = self._index, self._pairs
        for key in index.keys() & keys:  # postings are never empty (`_discard` drops them)
            found |= index[key]
        for key in pairs.keys() & keys:
            inner = pairs[key]
            for second in inner.keys() & keys:
                found |= inner[second]
        for prefix in prepared.prefix_hits:
            texts = self._prefix_index.get(prefix)
            if texts:
                found |= texts
        return found

    def match(self, doc: MatchDocument) -> list[Match]:
        """Every subscription the article matches, ordered by subscription id."""
        prepared = self.prepare(doc)
        keys = prepared.keys
        entries = self._entries
        out: list[Match] = []
        for text in self.candidates(prepared):
            entry = entries[text]
            if not entry.must <= keys:
                continue
            if entry.simple_terms is not None:
                terms = list(entry.simple_terms)
            elif entry.query.root.evaluate(prepared):
                terms = _matched_terms(entry.query, prepared)
            else:
                continue
            out.extend(Match(sub_id, list(terms)) for sub_id in entry.ids)
        out.sort(key=lambda m: m.subscription_id)
        return out


def _pair_order(item: Item) -> tuple[bool, str]:
    """Field keys go second, so the pair index is keyed by the rarer word."""
    return item[1].startswith("\x00"), item[1]


def _pair(a: Clause, b: Clause) -> Clause:
    """A clause requiring `a` and a key of `b`; `a` alone when a wildcard is involved."""
    if len(a) == 2 or a[0][0] == "p":
        return a
    keys = [item for item in b if item[0] == "k" and item != a[0]]
    return tuple(sorted((a[0], keys[0]), key=_pair_order)) if keys else a


def _discard(index: dict[str, set[str]], key: str, text: str) -> None:
    texts = index.get(key)
    if texts is not None:
        texts.discard(text)
        if not texts:
            del index[key]


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
