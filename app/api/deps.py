"""What the API needs from the rest of the service, as plain callables.

`ingest/` does not import `rq` at module level (only `workers/` does); the API
reaches the queues through `deps_from_context`, which imports them lazily,
like the CLI does. Tests build the same `ApiDeps` from a real `Context`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from ingest.metrics import QueueStat
from ingest.models import Alert
from ingest.settings import Settings
from ingest.store.base import Store

if TYPE_CHECKING:
    from app.runtime import Context


@dataclass
class ApiDeps:
    """The API's collaborators: settings, store, Redis, and two queue operations."""

    settings: Settings
    store: Store
    redis: redis.Redis
    enqueue_alerts: Callable[[list[Alert]], None]
    queue_stats: Callable[[], list[QueueStat]]


def rq_queue_stats(queues: Sequence[Any]) -> list[QueueStat]:
    """Depth of each RQ queue and its registries, and its live workers, read now."""
    from rq import Worker

    return [
        QueueStat(
            queue=q.name,
            queued=q.count,
            started=q.started_job_registry.count,
            scheduled=q.scheduled_job_registry.count,
            deferred=q.deferred_job_registry.count,
            failed=q.failed_job_registry.count,
            workers=Worker.count(queue=q),
        )
        for q in queues
    ]


def deps_from_context(ctx: Context) -> ApiDeps:
    """Wire the API to a process context: its store, Redis and the `alerts` queue."""
    from workers.jobs import enqueue_alerts

    return ApiDeps(
        settings=ctx.settings,
        store=ctx.store,
        redis=ctx.redis,
        enqueue_alerts=lambda alerts: enqueue_alerts(ctx, alerts),
        queue_stats=lambda: rq_queue_stats(ctx.queues),
    )
