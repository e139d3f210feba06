"""Webhook bodies: one matched article, or a digest of several. Field names are a contract.

Bodies are bounded: an article's text is cut at MAX_TEXT_BYTES (UTF-8) with
`"truncated": true` and `"text_length"` (characters of the full text), and a digest is cut
to MAX_DIGEST_BYTES by shortening every member's text alike (the full text stays available
through the API).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ingest.models import DIGEST_PREFIX, Alert, Article, Subscription, iso, utcnow

EVENT_TYPE = "article.matched"
DIGEST_EVENT = "article.digest"
MAX_TEXT_BYTES = 64 * 1024
MAX_DIGEST_BYTES = 1024 * 1024
MAX_DIGEST_ITEMS = 200  # members of one digest; the rest stay held for the next window
MIN_DIGEST_TEXT_BYTES = 1024  # each member keeps at least this much of its text


def _dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def article_object(article: Article, max_text_bytes: int = MAX_TEXT_BYTES) -> dict[str, Any]:
    """The webhook's `article` object, its text cut to `max_text_bytes` of UTF-8 if longer."""
    data = article.to_dict()
    encoded = article.text.encode()
    if len(encoded) > max_text_bytes:
        data["text"] = encoded[:max_text_bytes].decode(errors="ignore")
        data["truncated"] = True
        data["text_length"] = len(article.text)
    return data


def article_json(article: Article) -> str:
    """The `article` object as JSON text: built once per article when several subscriptions get it."""
    return json.dumps(article_object(article), ensure_ascii=False, separators=(",", ":"))


def build_payload(
    sub: Subscription, article: Article, matched_terms: Sequence[str], *, article_text: str | None = None
) -> bytes:
    """The body of one alert (`type` article.matched); `article_text` is `article_json(article)` if known.

    The envelope is serialised without the article and the article spliced in as the last member
    of `data`: the same bytes as one `json.dumps` of the whole, without re-encoding the text.
    """
    head = json.dumps({
        "type": EVENT_TYPE,
        "timestamp": iso(utcnow()),
        "data": {
            "subscription_id": sub.id,
            "subscription_name": sub.name,
            "query": sub.query,
            "matched_terms": list(matched_terms),
        },
    }, ensure_ascii=False, separators=(",", ":"))  # fmt: skip
    article_part = article_text if article_text is not None else article_json(article)
    return f'{head[:-2]},"article":{article_part}}}}}'.encode()


def _window(sub: Subscription, digest: Alert) -> tuple[str | None, str]:
    end = digest.story_id.removeprefix(DIGEST_PREFIX)
    minutes = sub.options.digest_minutes
    if not minutes:
        return None, end
    start = datetime.fromisoformat(end.replace("Z", "+00:00")) - timedelta(minutes=minutes)
    return iso(start), end


def build_digest_payload(sub: Subscription, digest: Alert, items: Sequence[tuple[Alert, Article]]) -> bytes:
    """The digest body (`type` article.digest, `data.articles` one per story), at most MAX_DIGEST_BYTES."""
    start, end = _window(sub, digest)
    budget = max(MIN_DIGEST_TEXT_BYTES, MAX_DIGEST_BYTES // max(1, len(items)) - 1024)
    return _dumps({
        "type": DIGEST_EVENT,
        "timestamp": iso(utcnow()),
        "data": {
            "subscription_id": sub.id,
            "subscription_name": sub.name,
            "query": sub.query,
            "window_start": start,
            "window_end": end,
            "count": len(items),
            "articles": [
                {**article_object(article, budget), "alert_id": member.id,
                 "matched_terms": list(member.matched_terms)}
                for member, article in items
            ],
        },
    })  # fmt: skip
