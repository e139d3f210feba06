"""Waking the webhook sender through Redis: workers push a token, the sender waits on it.

The database outbox is the record; this is only a doorbell. A lost ring costs at most the
sender's next look (it also looks every few seconds on its own).
"""

from __future__ import annotations

import asyncio
import contextlib

import redis
import redis.asyncio as aredis

from ingest.log import get_logger

log = get_logger(__name__)


class RedisWakeup:
    """`wake()` from any process; `wait()` in the sender's event loop."""

    def __init__(self, client: redis.Redis, url: str, prefix: str) -> None:
        self.client = client
        self.url = url
        self.key = f"{prefix}sender:wake"
        self._async: aredis.Redis | None = None

    def wake(self) -> None:
        """One token (the list never grows past one); a Redis error is logged, never raised."""
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.lpush(self.key, 1)
                pipe.ltrim(self.key, 0, 0)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("sender_wake_failed", error=str(exc))

    async def wait(self, timeout: float) -> bool:
        """Whether a token came within `timeout` seconds (False on timeout or a Redis error)."""
        if self._async is None:
            self._async = aredis.Redis.from_url(self.url)
        try:
            return bool(await self._async.blpop([self.key], timeout=max(0.01, timeout)))
        except Exception:  # Redis down, or a connection left broken by a cancelled wait: a fresh one
            await self.aclose()
            await asyncio.sleep(min(timeout, 1.0))
            return False

    async def aclose(self) -> None:
        if self._async is not None:
            with contextlib.suppress(Exception):
                await self._async.aclose()
            self._async = None
