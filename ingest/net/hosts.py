"""Per-host politeness for the whole deployment: fetch slots and back-offs shared in Redis.

INGEST_FETCH_PER_HOST holds across every poller, not per process: each host has a sorted set of
slots (member: a token of the poller holding it, score: when it expires, in Redis's own clock),
taken and given back by one Lua script, so a poller that dies frees its slots when they expire
(the feed lease's length). A host that answered 429 or Retry-After has a back-off key; while it
lives no poller fetches from that host.

Round trips: one per acquire. A slot given back is not sent on its own: it rides along with the
next acquire of its host by this process (usually at once: the next feed of that host was
waiting for the local slot it frees), or, if none came within a few tens of milliseconds, with
`flush()`, one round trip for all of them (the poller calls it every TICK, and at a pass's end).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass

import redis.asyncio as aredis

# KEYS[1] the host's slots, KEYS[2] its back-off, KEYS[3..] slots to give back (ARGV[4..] their tokens)
# ARGV[1] slots per host, ARGV[2] slot lifetime in ms, ARGV[3] the token asked for.
# Returns {1, 0} taken, {0, 0} every slot busy, {-1, ms} the host is backed off for ms more.
ACQUIRE = """
if redis.replicate_commands then redis.replicate_commands() end
for i = 3, #KEYS do redis.call('ZREM', KEYS[i], ARGV[i + 1]) end
local wait = redis.call('PTTL', KEYS[2])
if wait > 0 then return {-1, wait} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return {0, 0} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return {1, 0}
"""

# KEYS[1] the host's back-off; ARGV[1] ms. Only ever lengthened.
BACK_OFF = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
"""


@dataclass(frozen=True)
class Grant:
    """An acquire's answer: `token` when a slot was taken; else `backoff` seconds (0: all slots busy)."""

    token: str | None
    backoff: float = 0.0


class HostSlots:
    """One poller's view of the shared per-host slots; every method is one round trip at most."""

    def __init__(
        self, client: aredis.Redis, prefix: str, *, per_host: int, lifetime: float, owner: str
    ) -> None:
        self.client = client
        self.prefix = f"{prefix}host:"
        self.per_host = per_host
        self.lifetime_ms = max(1, int(lifetime * 1000))
        self.owner = owner
        self._serial = itertools.count()
        # slots given back, not sent yet: host -> [(token, when)]
        self._returned: defaultdict[str, list[tuple[str, float]]] = defaultdict(list)
        self._acquire = client.register_script(ACQUIRE)
        self._back_off = client.register_script(BACK_OFF)

    def _slots(self, host: str) -> str:
        return f"{self.prefix}{host}:slots"

    async def acquire(self, host: str) -> Grant:
        """Take one of the host's slots, giving back in the same round trip those of this host this
        process released (the feed waiting for this host's local slot is the one asking: its own
        host's release can never be in flight in another call and make the host look full)."""
        token = f"{self.owner}:{next(self._serial)}"
        returned = self._returned.pop(host, [])
        keys = [self._slots(host), f"{self.prefix}{host}:backoff", *(self._slots(host) for _ in returned)]
        args: list[str | int] = [self.per_host, self.lifetime_ms, token, *(t for t, _ in returned)]
        try:
            taken, wait = await self._acquire(keys=keys, args=args)
        except BaseException:
            self._returned[host][:0] = returned  # not given back yet: the next call tries again
            raise
        if int(taken) == 1:
            return Grant(token)
        return Grant(None, int(wait) / 1000 if int(taken) < 0 else 0.0)

    def release(self, host: str, token: str) -> None:
        """Give the slot back with the host's next acquire, or with `flush` once it has waited."""
        self._returned[host].append((token, time.monotonic()))

    @property
    def unsent(self) -> int:
        return sum(len(r) for r in self._returned.values())

    async def flush(self, older_than: float = 0.0) -> None:
        """Send, in one round trip, the slots given back at least `older_than` seconds ago (no acquire
        of their host carried them: other pollers may be waiting for them)."""
        cutoff = time.monotonic() - older_than
        sent: dict[str, list[tuple[str, float]]] = {}
        for host in list(self._returned):
            old = [r for r in self._returned[host] if r[1] <= cutoff]
            if old:
                sent[host] = old
                self._returned[host] = [r for r in self._returned[host] if r[1] > cutoff]
                if not self._returned[host]:
                    del self._returned[host]
        if not sent:
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for host, old in sent.items():
                    pipe.zrem(self._slots(host), *(t for t, _ in old))
                await pipe.execute()
        except BaseException:
            for host, old in sent.items():
                self._returned[host][:0] = old
            raise

    async def back_off(self, host: str, seconds: float) -> None:
        """No poller fetches from `host` for `seconds` (a longer back-off already set stays)."""
        await self._back_off(keys=[f"{self.prefix}{host}:backoff"], args=[max(1, int(seconds * 1000))])
