"""Queue names and how jobs are put on them."""

from __future__ import annotations

import redis
from rq import Queue
from rq.serializers import JSONSerializer

INGEST = "ingest"
ALERTS = "alerts"
ALERT_TIMEOUT = 60  # seconds for one delivery attempt (the receiver gets INGEST_WEBHOOK_TIMEOUT)
# Seconds a finished job (its hash, its result and its FinishedJobRegistry entry) stays in Redis.
# Nothing reads results (the database is the record; recovery and the sweeper treat a finished job
# and a missing one alike: both are "will not run"), so this only keeps recent successes visible
# in rq-dashboard; every second of it costs Redis memory at the job rate. Failures: FAILURE_TTL.
RESULT_TTL = 60
FAILURE_TTL = 7 * 24 * 3600


def queue_names(prefix: str = "") -> tuple[str, str]:
    """The ingest and alerts queue names, under an optional deployment prefix."""
    return f"{prefix}{INGEST}", f"{prefix}{ALERTS}"


def get_queues(connection: redis.Redis, prefix: str = "") -> tuple[Queue, Queue]:
    ingest, alerts = queue_names(prefix)
    return (
        Queue(ingest, connection=connection, serializer=JSONSerializer),
        Queue(alerts, connection=connection, serializer=JSONSerializer),
    )


def alert_job_id(alert_id: str, attempt: int) -> str:
    """One job id per (alert, attempt): the sweeper can tell whether an attempt is still queued."""
    return f"{alert_id}-{attempt}"
