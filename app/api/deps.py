"""What the API needs from the rest of the service: a few collaborators, built from the runtime.

Tests build the same `ApiDeps` from a real `Runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from app.runtime import Runtime
from ingest.metrics import QueueStat
from ingest.settings import Settings
from ingest.store.base import Store


@dataclass
class ApiDeps:
    """The API's collaborators: settings, store, Redis, the sender's bell and the queue's figures."""

    settings: Settings
    store: Store
    redis: redis.Redis
    wake: Callable[[], None]
    queue_stats: Callable[[], list[QueueStat]]


def deps_from_runtime(rt: Runtime) -> ApiDeps:
    return ApiDeps(settings=rt.settings, store=rt.store, redis=rt.redis, wake=rt.wakeup.wake,
                   queue_stats=rt.batch_queue.stats)  # fmt: skip
