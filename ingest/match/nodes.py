"""The query tree and how each node decides against a PreparedDocument.

Every node answers three questions: does the document match (`evaluate`),
which of its positive words occurred (`collect`, for `Match.matched_terms`),
and which index keys must be present for it to match at all (`must`, the
matcher's cheap pre-filter). Positional nodes (words, phrases, NEAR) also give
their occurrences as (start, end) token spans so NEAR can measure distances.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from ingest.match.document import DOMAIN_KEY, FEED_KEY, LANG_KEY, PreparedDocument
from ingest.match.text import is_char_token

Span = tuple[int, int]
_EMPTY: frozenset[str] = frozenset()


class Node:
    """Base of the query tree."""

    def evaluate(self, doc: PreparedDocument) -> bool:
        raise NotImplementedError

    def collect(self, doc: PreparedDocument, out: list[str]) -> None:
        """Append the original form of every positive word of this node that occurs in `doc`."""

    def must(self) -> frozenset[str]:
        return _EMPTY

    def leaves(self) -> Iterator[Leaf]:
        """Positive (not negated) words, phrases and wildcards, in query order."""
        return iter(())


class Leaf(Node):
    """A word, phrase or wildcard: something with positions in the text."""

    original: str

    def spans(self, doc: PreparedDocument) -> list[Span]:
        raise NotImplementedError

    def display(self) -> str:
        raise NotImplementedError

    def collect(self, doc: PreparedDocument, out: list[str]) -> None:
        if self.evaluate(doc) and self.original not in out:
            out.append(self.original)

    def leaves(self) -> Iterator[Leaf]:
        yield self


@dataclass(eq=False)
class Term(Leaf):
    key: str
    original: str

    def evaluate(self, doc: PreparedDocument) -> bool:
        return self.key in doc.tokens

    def spans(self, doc: PreparedDocument) -> list[Span]:
        return [(p, p) for p in doc.positions.get(self.key, ())]

    def must(self) -> frozenset[str]:
        return frozenset((self.key,))

    def display(self) -> str:
        return self.key


@dataclass(eq=False)
class Prefix(Leaf):
    prefix: str
    original: str

    def evaluate(self, doc: PreparedDocument) -> bool:
        return bool(doc.prefix_keys(self.prefix))

    def spans(self, doc: PreparedDocument) -> list[Span]:
        positions = doc.positions
        return sorted((p, p) for key in doc.prefix_keys(self.prefix) for p in positions[key])

    def display(self) -> str:
        return self.prefix + "*"


@dataclass(eq=False)
class Phrase(Leaf):
    """Consecutive words; with `slop` the words in any order within a window (`"a b"~5`)."""

    keys: tuple[str, ...]
    original: str
    slop: int | None = None

    def evaluate(self, doc: PreparedDocument) -> bool:
        tokens = doc.tokens
        if not all(k in tokens for k in self.keys):
            return False
        return bool(self.spans(doc))

    def spans(self, doc: PreparedDocument) -> list[Span]:
        if self.slop is not None:
            return self._windows(doc)
        positions = doc.positions
        first = positions.get(self.keys[0])
        if not first:
            return []
        rest = [(i, set(positions.get(k, ()))) for i, k in enumerate(self.keys) if i]
        last = len(self.keys) - 1
        return [(p, p + last) for p in first if all(p + i in s for i, s in rest)]

    def _windows(self, doc: PreparedDocument) -> list[Span]:
        """Minimal windows holding every word, no wider than slop + len(keys) - 1 tokens."""
        need = Counter(self.keys)
        events = sorted((p, k) for k in need for p in doc.positions.get(k, ()))
        width = (self.slop or 0) + len(self.keys) - 2
        have: Counter[str] = Counter()
        missing = len(need)
        found: list[Span] = []
        left = 0
        for pos, key in events:
            have[key] += 1
            if have[key] == need[key]:
                missing -= 1
            while missing == 0:
                start, lkey = events[left]
                if pos - start <= width:
                    found.append((start, pos))
                have[lkey] -= 1
                if have[lkey] < need[lkey]:
                    missing += 1
                left += 1
        return found

    def must(self) -> frozenset[str]:
        return frozenset(self.keys)

    def display(self) -> str:
        sep = "" if all(is_char_token(k) for k in self.keys) else " "
        text = sep.join(self.keys)
        return f'"{text}"~{self.slop}' if self.slop is not None else text


@dataclass(eq=False)
class And(Node):
    children: list[Node]

    def evaluate(self, doc: PreparedDocument) -> bool:
        for child in self.children:  # noqa: SIM110 - a plain loop: no generator on the hot path
            if not child.evaluate(doc):
                return False
        return True

    def collect(self, doc: PreparedDocument, out: list[str]) -> None:
        for child in self.children:
            child.collect(doc, out)

    def must(self) -> frozenset[str]:
        return frozenset().union(*(c.must() for c in self.children))

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()


@dataclass(eq=False)
class Or(Node):
    children: list[Node]

    def evaluate(self, doc: PreparedDocument) -> bool:
        for child in self.children:  # noqa: SIM110 - a plain loop: no generator on the hot path
            if child.evaluate(doc):
                return True
        return False

    def collect(self, doc: PreparedDocument, out: list[str]) -> None:
        for child in self.children:
            child.collect(doc, out)

    def must(self) -> frozenset[str]:
        sets = [c.must() for c in self.children]
        return frozenset.intersection(*sets) if sets else _EMPTY

    def leaves(self) -> Iterator[Leaf]:
        for child in self.children:
            yield from child.leaves()

    def spans(self, doc: PreparedDocument) -> list[Span]:
        """Occurrences of any alternative (only for OR groups of positional nodes)."""
        return sorted(s for c in self.children for s in c.spans(doc))  # type: ignore[attr-defined]


@dataclass(eq=False)
class Not(Node):
    child: Node

    def evaluate(self, doc: PreparedDocument) -> bool:
        return not self.child.evaluate(doc)


@dataclass(eq=False)
class Near(Node):
    """Two positional operands at most `distance` words apart, in either order."""

    left: Node
    right: Node
    distance: int

    def spans(self, doc: PreparedDocument) -> list[Span]:
        right = sorted(self.right.spans(doc))  # type: ignore[attr-defined]
        if not right:
            return []
        starts = [s for s, _ in right]
        longest = max(e - s for s, e in right)
        limit = self.distance
        found: list[Span] = []
        for s1, e1 in self.left.spans(doc):  # type: ignore[attr-defined]
            i = bisect_left(starts, s1 - limit - longest)
            while i < len(right) and starts[i] <= e1 + limit:
                s2, e2 = right[i]
                if max(s2 - e1, s1 - e2) <= limit and (s1, e1) != (s2, e2):
                    found.append((min(s1, s2), max(e1, e2)))
                i += 1
        return found

    def evaluate(self, doc: PreparedDocument) -> bool:
        if not (self.left.evaluate(doc) and self.right.evaluate(doc)):
            return False
        return bool(self.spans(doc))

    def collect(self, doc: PreparedDocument, out: list[str]) -> None:
        if self.evaluate(doc):
            self.left.collect(doc, out)
            self.right.collect(doc, out)

    def must(self) -> frozenset[str]:
        return self.left.must() | self.right.must()

    def leaves(self) -> Iterator[Leaf]:
        yield from self.left.leaves()
        yield from self.right.leaves()


@dataclass(eq=False)
class Title(Node):
    """`title:`: the inner expression is evaluated against the title alone."""

    child: Node

    def evaluate(self, doc: PreparedDocument) -> bool:
        return self.child.evaluate(doc.title_view)

    def collect(self, doc: PreparedDocument, out: list[str]) -> None:
        self.child.collect(doc.title_view, out)

    def must(self) -> frozenset[str]:
        return self.child.must()

    def leaves(self) -> Iterator[Leaf]:
        return self.child.leaves()


@dataclass(eq=False)
class Lang(Node):
    code: str

    def evaluate(self, doc: PreparedDocument) -> bool:
        return doc.language == self.code

    def must(self) -> frozenset[str]:
        return frozenset((LANG_KEY + self.code,))


@dataclass(eq=False)
class Feed(Node):
    """`feed:` a feed URL (scheme, `www.` and trailing slash ignored) or its host."""

    host: str
    identity: str | None  # None: match on host only

    def evaluate(self, doc: PreparedDocument) -> bool:
        if self.identity is None:
            return doc.feed_host == self.host
        return doc.feed_identity == self.identity

    def must(self) -> frozenset[str]:
        return frozenset((FEED_KEY + self.host,))


@dataclass(eq=False)
class Domain(Node):
    """`domain:` the article URL's host is this domain or one of its subdomains."""

    domain: str

    def evaluate(self, doc: PreparedDocument) -> bool:
        host = doc.url_host
        return host == self.domain or host.endswith("." + self.domain)

    def must(self) -> frozenset[str]:
        return frozenset((DOMAIN_KEY + self.domain,))


POSITIONAL = (Term, Prefix, Phrase, Near)


def is_positional(node: Node) -> bool:
    """Whether NEAR can measure distances to this node."""
    if isinstance(node, Or):
        return all(is_positional(c) for c in node.children)
    return isinstance(node, POSITIONAL)
