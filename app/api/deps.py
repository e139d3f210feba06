"""What the API needs from the rest of the service: the use cases and a few collaborators,
built from the runtime. Tests build the same `ApiDeps` from a real `Runtime`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis

from app.runtime import Runtime
from ingest.metrics import QueueStat
from ingest.services.usecases.alerts import Alerts
from ingest.services.usecases.feeds import Feeds
from ingest.services.usecases.reading import Reading
from ingest.services.usecases.subscriptions import Subscriptions
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

    @property
    def feeds(self) -> Feeds:
        return Feeds(self.store, self.settings)

    @property
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(self.store, self.settings, self.wake)

    @property
    def alerts(self) -> Alerts:
        return Alerts(self.store, self.settings, self.wake)

    @property
    def reading(self) -> Reading:
        return Reading(self.store)


def deps_from_runtime(rt: Runtime) -> ApiDeps:
    return ApiDeps(
        settings=rt.settings,
        store=rt.store,
        redis=rt.redis,
        wake=rt.wakeup.wake,
        queue_stats=rt.batch_queue.stats,
    )
