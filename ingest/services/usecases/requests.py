"""Typed requests of the use cases, shared by the CLI and the API (whose OpenAPI document is built
from them), and the two refusals every use case may answer: `Invalid` (422) and `Conflict` (409).

The shapes are msgspec Structs: one schema source, validated in about a microsecond, and a
30 ms import a CLI run can afford (docs/architecture.md, "The use-case layer", has the figures).
Rules that need the store or the network (a query that parses, a public webhook) are checked by
the use cases; these models check shape, types, bounds and text the database can hold.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from ingest.errors import ConfigError

MAX_ID = 2**63 - 1
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
T = TypeVar("T")


class Invalid(ConfigError):
    """A field or parameter of a request is refused; `field` names it (the API's 422)."""

    def __init__(self, field: str, message: str, **details: Any) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message
        self.details = details


class Conflict(ConfigError):
    """The request contradicts what is stored (a duplicate, a state that forbids it): the API's 409."""


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text (blank, NUL, lone surrogates), or None."""
    if not value.strip():
        return "must not be empty"
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    return None


def check_text(struct: Struct) -> None:
    """Refuse every string field of `struct` that the database could not hold."""
    for name in struct.__struct_fields__:
        value = getattr(struct, name)
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, str) and (problem := text_problem(item)):
                raise Invalid(name, problem)


class Request(Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every request: frozen, unknown fields refused, text checked on creation."""

    def __post_init__(self) -> None:
        check_text(self)


_AT = re.compile(r" - at `\$([^`]*)`")
_NAMED = re.compile(r"field `([^`]+)`")


def _invalid(exc: msgspec.ValidationError, kind: type[Any]) -> Invalid:
    """msgspec's message (`Expected `int` >= 60 - at `$.interval``) as an Invalid naming the field."""
    message = str(exc)
    at, named = _AT.search(message), _NAMED.search(message)
    top = re.match(r"\.(\w+)", at.group(1)) if at else None
    field = (named.group(1) if named else None) if top is None else top.group(1)
    reason = message[: at.start()] if at else message
    if "unknown field" in reason and top is None:
        reason = f"unknown field; allowed: {', '.join(getattr(kind, '__struct_fields__', ()))}"
    elif "missing required field" in reason:
        reason = "is required"
    return Invalid(field or "body", reason[:1].lower() + reason[1:])


def parse(kind: type[T], data: Any, *, strict: bool = True) -> T:
    """`data` (decoded JSON, query parameters, CLI arguments) as a `kind`, or Invalid naming the field.

    `strict=False` accepts the strings of query parameters for numbers.
    """
    try:
        return msgspec.convert(data, kind, strict=strict)
    except msgspec.ValidationError as exc:
        raise _invalid(exc, kind) from None


def parse_query(kind: type[T], params: list[tuple[str, str]]) -> T:
    """Query parameters as a `kind`: empty values are absent, the last of a repeated one wins."""
    return parse(kind, {k: v for k, v in params if v != ""}, strict=False)


Text200 = Annotated[str, Meta(min_length=1, max_length=200)]
Text2000 = Annotated[str, Meta(min_length=1, max_length=2000)]
Url = Annotated[str, Meta(min_length=1, max_length=2000, description="http(s); a public address")]
Secret = Annotated[
    str,
    Meta(min_length=1, max_length=400, description="whsec_ + base64 of >= 24 bytes; generated when omitted"),
]
Interval = Annotated[int, Meta(ge=60, le=30 * 86400, description="fixed seconds between polls")]
Limit = Annotated[
    int, Meta(ge=1, le=MAX_LIMIT, description=f"items per page (default 50, at most {MAX_LIMIT})")
]
Cursor = Annotated[str, Meta(max_length=2000, description="`next_cursor` of the previous page")]
Id = Annotated[int, Meta(ge=1, le=MAX_ID)]
Time = Annotated[str, Meta(max_length=64, extra_json_schema={"format": "date-time"})]


# -- feeds ------------------------------------------------------------------------------


class NewFeed(Request, frozen=True):
    """Add a feed (a web page URL: the feed it announces, when discovery is asked for)."""

    url: Url
    interval: Interval | None = None
    fulltext: bool = False
    name: Text200 | None = None


class FeedChange(Request, frozen=True):
    """Change what the operator chose for a feed; absent fields stay, `default_interval` clears one."""

    interval: Interval | None = None
    default_interval: bool = False
    fulltext: bool | None = None
    name: Text200 | None = None


# -- subscriptions ----------------------------------------------------------------------


class OptionsInput(Request, frozen=True):
    """Subscription options as given: feeds by id or URL, rate limit as `10/min` or 10."""

    languages: list[Annotated[str, Meta(max_length=16)]] = []
    feed_ids: list[Id | Text2000] = []
    digest_minutes: Annotated[int, Meta(ge=1, le=7 * 24 * 60)] | None = None
    rate_limit: Annotated[int, Meta(ge=1, le=MAX_ID)] | Annotated[str, Meta(max_length=20)] | None = None


class NewSubscription(Request, frozen=True):
    query: Text2000
    webhook: Url
    name: Text200 | None = None
    secret: Secret | None = None
    options: OptionsInput | None = None
    backfill: (
        Annotated[str, Meta(max_length=20, description="also alert stories stored within, e.g. 7d")] | None
    ) = None


class SubscriptionChange(Request, frozen=True):
    """PATCH: absent fields stay; `options` replaces the options whole; `secret` replaces at once."""

    name: Text200 | None = None
    query: Text2000 | None = None
    webhook: Url | None = None
    secret: Secret | None = None
    status: Literal["active", "paused"] | None = None
    options: OptionsInput | None = None


# -- listings ----------------------------------------------------------------------------


class PageQuery(Request, frozen=True):
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


class ArticleQuery(Request, frozen=True):
    """Article filters; with `q`, full-text search ranked best first."""

    q: (
        Annotated[
            str,
            Meta(
                max_length=500, description="every word must occur in the title or text; results best first"
            ),
        ]
        | None
    ) = None
    language: Annotated[str, Meta(max_length=16, description="ISO 639-1 code, e.g. `en`")] | None = None
    feed: Annotated[int, Meta(ge=1, le=MAX_ID, description="feed id")] | None = None
    story: Annotated[str, Meta(max_length=200, description="story id")] | None = None
    since: Annotated[Time, Meta(description="fetched at or after")] | None = None
    until: Annotated[Time, Meta(description="fetched before")] | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


class AlertQuery(Request, frozen=True):
    status: Literal["pending", "delivered", "failed"] | None = None
    subscription: Annotated[str, Meta(max_length=200, description="only this subscription's")] | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None


class FailedQuery(Request, frozen=True):
    subscription: Annotated[str, Meta(max_length=200, description="only this subscription's")] | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: Cursor | None = None
