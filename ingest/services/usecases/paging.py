"""Opaque cursors for listings: issued by a listing, validated strictly when they come back."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from ingest.errors import ConfigError
from ingest.models import parse_iso


class BadCursor(ConfigError):
    """A cursor this listing did not issue (the API's 400 `bad_cursor`)."""

    def __init__(self) -> None:
        super().__init__("cursor is not one this listing returned")


def encode_cursor(kind: str, *key: Any) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str | None, kind: str, types: tuple[type, ...]) -> list[Any] | None:
    """The key inside `raw` (None on the first page); BadCursor if it is not one issued for `kind`."""
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        data = None
    if (
        not isinstance(data, list)
        or len(data) != len(types) + 1
        or data[0] != kind
        or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(data[1:], types, strict=True))
    ):
        raise BadCursor()
    return data[1:]


def time_key(raw: str | None, kind: str) -> tuple[datetime, str] | None:
    """A (time, id) keyset cursor, as the newest-first listings use."""
    key = decode_cursor(raw, kind, (str, str))
    if key is None:
        return None
    try:
        parsed = parse_iso(key[0])
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise BadCursor()
    return parsed.astimezone(UTC), key[1]
