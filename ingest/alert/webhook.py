"""Webhook alerts in the Standard Webhooks format: payload, signature, one delivery attempt.

Retrying is the caller's business (workers/jobs.py): this module makes one
attempt and says how it went, so the outbox in the database stays the record.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ingest.errors import AlertDeliveryError, ConfigError
from ingest.models import Article, Subscription, iso, utcnow
from ingest.net.retry_after import parse_retry_after

if TYPE_CHECKING:  # the client is the caller's (app.runtime); only its type is needed here
    from ingest.alert.http_client import WebhookClient

EVENT_TYPE = "article.matched"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh `whsec_` secret: 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def validate_secret(secret: str) -> str:
    """Refuse secrets that a Standard Webhooks receiver could not use."""
    if not secret.startswith(SECRET_PREFIX):
        raise ConfigError(f"webhook secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise ConfigError("webhook secret is not valid base64 after 'whsec_'") from None
    if len(key) < 24:
        raise ConfigError("webhook secret is too short: use at least 24 random bytes")
    return secret


def build_payload(sub: Subscription, article: Article, matched_terms: Sequence[str]) -> bytes:
    """The JSON body: fixed field names, other tools parse them."""
    body = {
        "type": EVENT_TYPE,
        "timestamp": iso(utcnow()),
        "data": {
            "subscription_id": sub.id,
            "subscription_name": sub.name,
            "query": sub.query,
            "matched_terms": list(matched_terms),
            "article": article.to_dict(),
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` value: one `v1,<base64>` per secret, space-separated (rotation)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    parts = []
    for secret in secrets_:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode())
    return " ".join(parts)


@dataclass(frozen=True)
class Delivery:
    """A successful attempt: the receiver's status and how long it took."""

    status: int
    seconds: float


def deliver(
    client: WebhookClient, url: str, msg_id: str, body: bytes, secrets_: Sequence[str], *, timeout: float
) -> Delivery:
    """POST once. 2xx is success; anything else raises AlertDeliveryError (3xx is never followed).

    The receiver has `timeout` seconds to connect and answer; of its answer at most
    webhook_http.MAX_RESPONSE_BYTES are read, and reading stops when `timeout` is up.
    An address the netsafe check refuses raises UnsafeURLError (`refused: ...`).
    """
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets_, msg_id, timestamp, body),
    }
    started = time.monotonic()
    answer = client.post(url, body, headers, timeout)
    status = answer.status
    if 200 <= status < 300:
        return Delivery(status, time.monotonic() - started)
    raise AlertDeliveryError(
        url,
        f"HTTP {status} {answer.reason}".strip(),
        status=status,
        retry_after=parse_retry_after(answer.headers.get("retry-after")),
        gone=status == 410,
    )


def next_delay(
    schedule: Sequence[float],
    attempts: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after `attempts` failures; None when retries are used up.

    Jitter of up to +10% spreads retries of many alerts to one receiver;
    a Retry-After hint is honoured, capped at the schedule's longest step.
    """
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    jitter = (rng or random).uniform(0, 0.1) * base
    delay = base + jitter
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(schedule)))
    return delay
