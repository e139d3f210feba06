"""Standard Webhooks secrets and signatures (https://www.standardwebhooks.com/)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from ingest.errors import ConfigError

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


def sign(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature` value: one `v1,<base64>` per secret, space-separated (rotation)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    parts = []
    for secret in secrets_:
        digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode())
    return " ".join(parts)


@functools.lru_cache(maxsize=4096)
def _key(secret: str) -> bytes:
    """A secret's HMAC key, decoded once (a sender signs many alerts with each secret)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signed_headers(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one attempt: the id is the same on every attempt, the timestamp fresh."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets_, msg_id, timestamp, body),
    }
