"""The data that flows between stages: small frozen dataclasses.

Each stage takes one of these and returns the next; none of them knows about
Redis, RQ or the database. `to_dict`/`from_dict` exist only where an object
crosses a process boundary (RQ job arguments, CLI JSON, webhook payloads).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def article_id(feed_id: int, entry_key: str) -> str:
    """Deterministic, so re-processing an entry finds the same article."""
    return "art_" + hashlib.sha256(f"{feed_id}\x00{entry_key}".encode()).hexdigest()[:24]


def alert_id(subscription_id: str, story_id: str) -> str:
    """The webhook-id: derived from (subscription, story), so every attempt and replay shares it."""
    digest = hashlib.sha256(f"{subscription_id}\x00{story_id}".encode()).hexdigest()[:26]
    return f"msg_{digest}"


def new_subscription_id() -> str:
    return "sub_" + uuid.uuid4().hex[:16]


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Feed:
    """A feed the poller watches, with what the last fetch taught us."""

    id: int
    url: str
    title: str | None = None
    interval: int | None = None  # fixed seconds between polls; None: the default
    etag: str | None = None
    last_modified: str | None = None
    status: str = "active"  # active | disabled | gone
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_errors: int = 0
    next_poll_at: datetime | None = None
    created_at: datetime | None = None
    # redirects: a 301/308 target seen on `redirect_count` consecutive polls (moved at 3)
    redirect_url: str | None = None
    redirect_count: int = 0
    muted_reason: str | None = None  # why the feed is not polled (410 Gone, ...); `feeds enable` clears it
    previous_urls: tuple[str, ...] = ()  # URLs the feed had before permanent redirects moved it
    # the scheduler's last decision, and what it learnt about the feed's publishing
    schedule_interval: int | None = None  # seconds until the next poll, as chosen
    schedule_reason: str | None = None  # why that interval, in words
    last_entry_at: datetime | None = None  # newest entry date seen (or when new entries last appeared)
    entry_interval: int | None = None  # observed seconds between new entries (moving average)
    last_status: int | None = None  # HTTP status of the last fetch that got an answer
    fulltext: bool = False  # short entries are replaced by the article extracted from their page


@dataclass(frozen=True)
class WebSubSubscription:
    """A feed's WebSub (PubSubHubbub) subscription at its hub."""

    feed_id: int
    hub: str
    topic: str
    secret: str  # HMAC key for X-Hub-Signature; never printed
    state: str = "pending"  # pending | active | denied | failed
    lease_until: datetime | None = None
    lease_seconds: int | None = None  # the lease the hub granted
    last_error: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class FetchResult:
    """What one conditional GET returned. `content` is None on 304 Not Modified."""

    url: str  # final URL after redirects
    status: int
    content: bytes | None
    headers: dict[str, str]
    etag: str | None = None
    last_modified: str | None = None
    permanent_redirect: str | None = None  # where a 301/308 chain from the requested URL led

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class RawEntry:
    """One feed entry as parsed, before any cleaning. Travels in RQ jobs as JSON."""

    feed_id: int
    feed_url: str
    entry_key: str  # identity within the feed: guid, else canonical link, else content hash
    url: str | None
    title: str
    content: str  # HTML (or text) of the fullest body the feed carries
    summary: str | None = None
    published_at: datetime | None = None
    author: str | None = None
    feed_title: str | None = None
    language_hint: str | None = None  # declared by the feed or page; only a hint
    is_html: bool = True
    fulltext: bool = False  # the feed wants the article page fetched when the body is short
    # the last title segment most titles of the feed share (learnt from the whole document):
    # "" when the feed's titles share none, None when there were too few titles to tell
    title_suffix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["published_at"] = iso(self.published_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RawEntry:
        values = dict(data)
        values["published_at"] = parse_iso(values.get("published_at"))
        return cls(**values)


@dataclass(frozen=True)
class ParsedFeed:
    """A parsed feed document: its metadata and entries, in document order."""

    title: str | None
    link: str | None
    language: str | None
    entries: list[RawEntry]
    ttl_minutes: int | None = None
    warnings: list[str] = field(default_factory=list)
    hub: str | None = None  # WebSub hub the feed advertises
    self_url: str | None = None  # the feed's own URL as it declares it (the WebSub topic)


@dataclass(frozen=True)
class CleanDocument:
    """The article a reader would call the article: clean title, text, canonical URL."""

    title: str
    text: str  # paragraphs separated by one blank line
    summary: str | None
    url: str | None  # canonical: tracking parameters and fragment removed
    removed: list[str] = field(default_factory=list)  # paragraphs the rules dropped, for debugging
    original_bytes: int | None = None  # UTF-8 size of the text before the storage cap cut it


@dataclass(frozen=True)
class LanguageResult:
    """ISO 639-1 code (or `und`) and the detector's confidence in it, 0..1."""

    code: str
    confidence: float


@dataclass(frozen=True)
class DedupResult:
    """Which story an article belongs to, and why.

    kind: `new` (starts a story), `exact` (same canonical URL or body hash as an
    earlier article: not stored again), `near` (syndicated copy: stored, joins the story).
    """

    story_id: str
    kind: str
    duplicate_of: str | None = None
    similarity: float | None = None


@dataclass(frozen=True)
class Article:
    """A processed article as stored and as sent in webhooks."""

    id: str
    feed_id: int
    feed_url: str
    entry_key: str
    url: str | None
    title: str
    text: str
    summary: str | None
    language: str
    language_confidence: float
    published_at: datetime | None
    story_id: str
    content_hash: str
    fetched_at: datetime
    author: str | None = None
    updated: bool = False
    original_text_bytes: int | None = None  # set when `text` was cut to the storage cap: the size before

    def to_dict(self) -> dict[str, Any]:
        """The webhook's `article` object (and the CLI's JSON line); `original_text_bytes` only when cut."""
        cut = {} if self.original_text_bytes is None else {"original_text_bytes": self.original_text_bytes}
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "text": self.text,
            "summary": self.summary,
            "language": self.language,
            "language_confidence": round(self.language_confidence, 4),
            "published_at": iso(self.published_at),
            "feed_url": self.feed_url,
            "story_id": self.story_id,
            **cut,
        }


@dataclass(frozen=True)
class SubscriptionOptions:
    """What a subscriber chose beyond the query: filters, digest mode, rate limit (empty/None: off)."""

    languages: tuple[str, ...] = ()  # ISO 639-1 codes an article must have
    feed_ids: tuple[int, ...] = ()  # feeds an article must come from
    digest_minutes: int | None = None  # one webhook per N minutes with every match, instead of one per match
    rate_limit: int | None = None  # most webhooks per minute; more wait, none is dropped

    def accepts(self, language: str, feed_id: int) -> bool:
        """Whether an article passes the language and feed filters."""
        code = language.split("-")[0].lower()
        return (not self.languages or code in self.languages) and (
            not self.feed_ids or feed_id in self.feed_ids
        )

    @property
    def filters(self) -> bool:
        return bool(self.languages or self.feed_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "languages": list(self.languages),
            "feed_ids": list(self.feed_ids),
            "digest_minutes": self.digest_minutes,
            "rate_limit": self.rate_limit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SubscriptionOptions:
        data = data or {}
        return cls(
            languages=tuple(data.get("languages") or ()),
            feed_ids=tuple(data.get("feed_ids") or ()),
            digest_minutes=data.get("digest_minutes"),
            rate_limit=data.get("rate_limit"),
        )


@dataclass(frozen=True)
class Subscription:
    """A subscriber's topic query and where its alerts go."""

    id: str
    name: str
    query: str
    webhook: str
    secret: str  # whsec_...
    status: str = "active"  # active | paused | disabled
    status_reason: str | None = None
    created_at: datetime | None = None
    options: SubscriptionOptions = SubscriptionOptions()
    failing_since: datetime | None = None  # first failed delivery since the last success
    last_success_at: datetime | None = None  # last delivery a receiver accepted


@dataclass(frozen=True)
class Match:
    """One subscription matched one article, through these terms."""

    subscription_id: str
    matched_terms: list[str]


@dataclass(frozen=True)
class Alert:
    """One (subscription, story) alert in the outbox. `id` is the webhook-id."""

    id: str
    subscription_id: str
    story_id: str
    article_id: str
    matched_terms: list[str]
    # pending | delivered | failed (dead letter) | held (waits for its digest) | digested (sent in one)
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    delivered_at: datetime | None = None
    digest_id: str | None = None  # the digest alert that carried this match (digest mode)

    @property
    def is_digest(self) -> bool:
        """A digest: one webhook carrying a subscription's held matches (story_id `digest:<window end>`)."""
        return self.story_id.startswith(DIGEST_PREFIX)


DIGEST_PREFIX = "digest:"


@dataclass(frozen=True)
class ArticleFilter:
    """Which stored articles a listing or search wants (None: any); times bound `fetched_at`."""

    language: str | None = None
    feed_id: int | None = None
    story_id: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class PendingBatch:
    """A batch of raw entries the poller accepted, kept in the database until a worker processed it."""

    id: int
    feed_id: int
    entries: list[dict[str, Any]]  # RawEntry.to_dict() of each entry
    status: str = "pending"  # pending | failed (gave up after INGEST_BATCH_MAX_ATTEMPTS; kept for inspection)
    attempts: int = 0  # times queued; the job id is `batch-<id>-<attempts>`
    created_at: datetime | None = None
    queued_at: datetime | None = None
    last_error: str | None = None
