"""Per-subscription webhook rate limit: a fixed one-minute window counted in Redis.

Over the limit nothing is dropped: the caller is told how long to wait. The
k-th webhook over the limit in a window waits for window `ceil(k / limit)`
after this one, so a burst drains at `limit` per minute instead of every
waiting webhook retrying at the same instant.
"""

from __future__ import annotations

import time

import redis

WINDOW_SECONDS = 60.0


def acquire(client: redis.Redis, prefix: str, sub_id: str, limit: int, *, now: float | None = None) -> float:
    """Take one send slot; 0.0 if the send may go now, else seconds to wait before trying again."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    key = f"{prefix}rate:{sub_id}:{window}"
    with client.pipeline() as pipe:
        pipe.incr(key)
        pipe.expire(key, int(WINDOW_SECONDS * 2) + 1)
        count = int(pipe.execute()[0])
    if count <= limit:
        return 0.0
    windows_ahead = 1 + (count - limit - 1) // limit
    return (window + windows_ahead) * WINDOW_SECONDS - now


class RedisRateLimiter:
    """The delivery service's rate limiter over this module's Redis window counts."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def acquire(self, sub_id: str, limit: int) -> float:
        return acquire(self.client, self.prefix, sub_id, limit)
