"""The subscription query language: lexer, parser and the parsed `Query`.

Grammar (highest precedence last)::

    query   := or ( "OR" or )*
    or      := unary ( ["AND"] unary )*          adjacent terms are ANDed
    unary   := ("NOT" | "-") unary | near
    near    := primary ( "NEAR/n" primary )*
    primary := WORD | WORD* | "PHRASE" ["~n"] | "(" query ")"
             | title:primary | lang:CODE | feed:URL-or-host | domain:HOST

See docs/query-language.md for the user-facing contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ingest.errors import QueryError
from ingest.match.document import url_host, url_identity
from ingest.match.nodes import (
    And,
    Domain,
    Feed,
    Lang,
    Leaf,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Term,
    Title,
    is_positional,
)
from ingest.match.text import is_char_token, tokenize

MAX_QUERY_LENGTH = 4096
MAX_DEPTH = 64
MAX_DISTANCE = 1000
MIN_PREFIX = 3
FIELDS = ("title", "lang", "feed", "domain")
_VALUE_FIELDS = frozenset({"lang", "feed", "domain"})
_FIELD_RE = re.compile(r"([A-Za-z]+):")
_NEAR_RE = re.compile(r"NEAR(?:/(\d+))?$")
_STOP = frozenset(' \t\r\n()"')
_HOST_RE = re.compile(r"[a-z0-9\-]+(\.[a-z0-9\-]+)*")


@dataclass(frozen=True)
class Tok:
    kind: str  # WORD PHRASE VALUE FIELD LP RP AND OR NOT NEAR EOF
    pos: int
    text: str = ""
    number: int | None = None


class _Lexer:
    """Splits a query into tokens, raising QueryError at the offending character."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.i = 0
        self.out: list[Tok] = []

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, pos, self.query)

    def run(self) -> list[Tok]:
        q = self.query
        while self.i < len(q):
            ch = q[self.i]
            if ch.isspace():
                self.i += 1
            elif ch in "()":
                self.out.append(Tok("LP" if ch == "(" else "RP", self.i))
                self.i += 1
            elif ch == '"':
                self._phrase()
            elif ch == "-" and (not self.out or self.out[-1].kind != "FIELD"):
                self._minus()
            else:
                self._word()
        self.out.append(Tok("EOF", len(q)))
        return self.out

    def _minus(self) -> None:
        nxt = self.query[self.i + 1 : self.i + 2]
        if not nxt or nxt.isspace() or nxt == ")":
            raise self.error("'-' must be directly followed by what it excludes", self.i)
        self.out.append(Tok("NOT", self.i, "-"))
        self.i += 1

    def _phrase(self) -> None:
        start = self.i
        end = self.query.find('"', start + 1)
        if end < 0:
            raise self.error("unterminated phrase (missing closing quote)", start)
        self.i = end + 1
        slop = None
        if self.query[self.i : self.i + 1] == "~":
            match = re.match(r"\d+", self.query[self.i + 1 :])
            if not match:
                raise self.error("'~' after a phrase needs a number of words, e.g. \"a b\"~5", self.i)
            slop = int(match.group())
            self.i += 1 + len(match.group())
        self.out.append(Tok("PHRASE", start, self.query[start + 1 : end], slop))

    def _read_until(self, stop: frozenset[str]) -> str:
        start = self.i
        while self.i < len(self.query) and self.query[self.i] not in stop:
            self.i += 1
        return self.query[start : self.i]

    def _word(self) -> None:
        start = self.i
        field_match = _FIELD_RE.match(self.query, start)
        if field_match:
            self._field(field_match)
            return
        word = self._read_until(_STOP)
        if word in ("AND", "OR", "NOT"):
            self.out.append(Tok(word, start, word))
        elif word.startswith("NEAR") and (word == "NEAR" or word[4] == "/"):
            near = _NEAR_RE.match(word)
            if not near or near.group(1) is None:
                raise self.error("NEAR needs a distance in words, e.g. NEAR/5", start)
            self.out.append(Tok("NEAR", start, word, int(near.group(1))))
        else:
            self.out.append(Tok("WORD", start, word))

    def _field(self, match: re.Match[str]) -> None:
        name = match.group(1).lower()
        start = self.i
        if name not in FIELDS:
            raise self.error(f"unknown field '{match.group(1)}:' (known: {', '.join(FIELDS)})", start)
        self.i = match.end()
        nxt = self.query[self.i : self.i + 1]
        if not nxt or nxt.isspace() or nxt == ")":
            raise self.error(f"{name}: needs a value right after the colon", start)
        self.out.append(Tok("FIELD", start, name))
        if name in _VALUE_FIELDS:
            value_start = self.i
            self.out.append(Tok("VALUE", value_start, self._read_until(frozenset(" \t\r\n()"))))


_STARTS_UNARY = frozenset({"WORD", "PHRASE", "LP", "FIELD", "NOT"})
_STARTS_PRIMARY = frozenset({"WORD", "PHRASE", "LP", "FIELD"})


class _Parser:
    """Recursive descent over the lexer's tokens."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _Lexer(query).run()
        self.i = 0
        self.depth = 0

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, pos, self.query)

    def peek(self) -> Tok:
        return self.tokens[self.i]

    def take(self) -> Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise self.error("empty query", 0)
        node = self._or()
        tok = self.peek()
        if tok.kind == "RP":
            raise self.error("unmatched closing parenthesis", tok.pos)
        return node

    def _or(self) -> Node:
        children = [self._and()]
        while self.peek().kind == "OR":
            op = self.take()
            if self.peek().kind not in _STARTS_UNARY:
                raise self.error("OR has nothing on its right", op.pos)
            children.append(self._and())
        return children[0] if len(children) == 1 else Or(children)

    def _and(self) -> Node:
        tok = self.peek()
        if tok.kind in ("AND", "OR", "NEAR"):
            raise self.error(f"{tok.text} has nothing on its left", tok.pos)
        children = [self._unary()]
        while True:
            tok = self.peek()
            if tok.kind == "AND":
                self.take()
                if self.peek().kind not in _STARTS_UNARY:
                    raise self.error("AND has nothing on its right", tok.pos)
            elif tok.kind not in _STARTS_UNARY:
                break
            children.append(self._unary())
        return children[0] if len(children) == 1 else And(children)

    def _unary(self) -> Node:
        tok = self.peek()
        if tok.kind != "NOT":
            return self._near()
        self.take()
        if self.peek().kind not in _STARTS_UNARY:
            raise self.error(f"{tok.text} has nothing to exclude", tok.pos)
        return Not(self._unary())

    def _near(self) -> Node:
        start = self.peek().pos
        node = self._primary()
        while self.peek().kind == "NEAR":
            op = self.take()
            if op.number is None or not 1 <= op.number <= MAX_DISTANCE:
                raise self.error(f"NEAR distance must be between 1 and {MAX_DISTANCE}", op.pos)
            if self.peek().kind not in _STARTS_PRIMARY:
                raise self.error(f"{op.text} has nothing on its right", op.pos)
            right_start = self.peek().pos
            right = self._primary()
            for operand, pos in ((node, start), (right, right_start)):
                if not is_positional(operand):
                    raise self.error(f"{op.text} needs a word, phrase or OR group of them on each side", pos)
            node = Near(node, right, op.number)
        return node

    def _primary(self) -> Node:
        tok = self.take()
        if tok.kind == "WORD":
            return self._word(tok)
        if tok.kind == "PHRASE":
            return self._phrase(tok)
        if tok.kind == "LP":
            return self._group(tok)
        if tok.kind == "FIELD":
            return self._field(tok)
        if tok.kind == "RP":
            raise self.error("unmatched closing parenthesis", tok.pos)
        if tok.kind in ("AND", "OR", "NEAR"):
            raise self.error(f"{tok.text} has nothing on its left", tok.pos)
        raise self.error("expected a word, phrase or group", tok.pos)

    def _group(self, open_tok: Tok) -> Node:
        if self.peek().kind == "RP":
            raise self.error("empty parentheses", open_tok.pos)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("parentheses nested too deeply", open_tok.pos)
        node = self._or()
        self.depth -= 1
        if self.peek().kind != "RP":
            raise self.error("unclosed parenthesis", open_tok.pos)
        self.take()
        return node

    def _word(self, tok: Tok) -> Node:
        word = tok.text
        star = word.find("*")
        if star >= 0:
            return self._wildcard(tok, star)
        tokens = tokenize(word)
        if not tokens:
            raise self.error(f"'{word}' contains nothing searchable", tok.pos)
        if len(tokens) == 1:
            return Term(tokens[0][1], word)
        return Phrase(tuple(key for _, key in tokens), word)

    def _wildcard(self, tok: Tok, star: int) -> Node:
        word = tok.text
        if word == "*":
            raise self.error("a bare '*' matches nothing; put it after a prefix, e.g. ceasefir*", tok.pos)
        if star != len(word) - 1:
            raise self.error("'*' is only allowed at the end of a word", tok.pos + star)
        tokens = tokenize(word[:-1])
        if len(tokens) != 1 or is_char_token(tokens[0][0]):
            raise self.error("a wildcard applies to one word of a spaced script", tok.pos)
        base = tokens[0][0]
        if len(base) < MIN_PREFIX:
            raise self.error(
                f"wildcard prefix '{word[:-1]}' is too short ({MIN_PREFIX} letters at least)", tok.pos
            )
        return Prefix(base, word)

    def _phrase(self, tok: Tok) -> Node:
        tokens = tokenize(tok.text)
        if not tokens:
            raise self.error("empty phrase", tok.pos)
        keys = tuple(key for _, key in tokens)
        if len(keys) == 1:
            return Term(keys[0], tok.text)
        return Phrase(keys, tok.text, tok.number)

    def _field(self, tok: Tok) -> Node:
        if tok.text == "title":
            if self.peek().kind not in _STARTS_PRIMARY:
                raise self.error("title: needs a word, phrase or (group) right after the colon", tok.pos)
            return Title(self._primary())
        value = self.take()
        raw = value.text
        if tok.text == "lang":
            code = raw.lower()
            if not re.fullmatch(r"[a-z]{2}", code):
                raise self.error(f"lang: needs a two-letter ISO 639-1 code, got '{raw}'", value.pos)
            return Lang(code)
        host = url_host(raw)
        if not host or not _HOST_RE.fullmatch(host):
            raise self.error(f"{tok.text}: needs a host name or URL, got '{raw}'", value.pos)
        if tok.text == "domain":
            return Domain(host)
        identity = url_identity(raw)
        return Feed(host, identity if identity != host else None)


@dataclass(frozen=True)
class Query:
    """A parsed query: the source text and its tree."""

    text: str
    root: Node = field(repr=False)

    def terms(self) -> list[str]:
        """Normalized positive words, phrases and wildcards, for display."""
        seen: list[str] = []
        for leaf in self.leaves():
            shown = leaf.display()
            if shown not in seen:
                seen.append(shown)
        return seen

    def leaves(self) -> list[Leaf]:
        return list(self.root.leaves())


def parse_query(query: str) -> Query:
    """Parse a subscription query; a bad one raises QueryError with the 0-based position."""
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryError(f"query is longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH, query)
    return Query(query, _Parser(query).parse())
