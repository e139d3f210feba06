"""RQ job entry points: thin, importable, JSON arguments only."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog

from app.runtime import Context, get_context
from ingest import metrics
from ingest.alert import ratelimit
from ingest.alert.digest import build_digest_payload, digest_items
from ingest.alert.webhook import build_payload, deliver, next_delay
from ingest.errors import AlertDeliveryError, FetchError, NotFound
from ingest.log import get_logger
from ingest.models import Alert, PendingBatch, RawEntry, Subscription, iso, utcnow
from ingest.services.process import BatchResult
from workers.queues import ALERT_TIMEOUT, FAILURE_TTL, RESULT_TTL, alert_job_id
from workers.recovery import rematch

log = get_logger(__name__)

LOCK_MARGIN_SECONDS = 10  # the delivery lock outlives one attempt (INGEST_WEBHOOK_TIMEOUT) by this much
Bound = structlog.typing.FilteringBoundLogger


def process_batch(batch_id: int) -> dict[str, int]:
    """The poller's job: run stored batch `batch_id` (a `pending_batches` row) through the pipeline.

    The job carries only the id: the entries are in the database already, so Redis neither
    holds nor compresses them a second time (RQ also saves a job's arguments, and their repr as
    its description, at enqueue and again when the job finishes).
    """
    ctx = get_context()
    batch = ctx.store.get_batch(batch_id)
    if batch is None:
        log.info("batch_already_done", batch_id=batch_id)
        return {"entries": 0, "stored": 0, "skipped": 1}
    return _process(ctx, batch.entries, batch)


def process_entries(entries: list[dict[str, Any]], batch_id: int | None = None) -> dict[str, int]:
    """Run entries through the pipeline (jobs queued before `process_batch` existed carry them).

    `batch_id`: the poller's `pending_batches` row; a batch already finished is skipped.
    """
    ctx = get_context()
    batch = ctx.store.get_batch(batch_id) if batch_id is not None else None
    if batch_id is not None and batch is None:
        log.info("batch_already_done", batch_id=batch_id)
        return {"entries": len(entries), "stored": 0, "skipped": 1}
    return _process(ctx, entries, batch)


def _process(ctx: Context, entries: list[dict[str, Any]], batch: PendingBatch | None) -> dict[str, int]:
    """The pipeline, then one delivery queued per new (subscription, story), then the batch row
    deleted. A retried batch (attempts > 1) is matched again (`workers.recovery.rematch`)."""
    raws = [RawEntry.from_dict(e) for e in entries]
    result = ctx.pipeline.process(raws)
    if batch is not None and batch.attempts > 1:
        result.alerts += rematch(ctx, raws, since=batch.created_at)
    _count_batch(ctx, result)
    for article in result.stored:
        log.info(
            "article_stored",
            article_id=article.id,
            url=article.url,
            story_id=article.story_id,
            language=article.language,
            feed_url=article.feed_url,
        )
    enqueue_alerts(ctx, result.alerts)
    if batch is not None:
        ctx.store.finish_batch(batch.id)
    summary = {
        "entries": len(raws),
        "stored": len(result.stored),
        "updated": result.updated,
        "unchanged": result.unchanged,
        "exact_duplicates": result.exact_duplicates,
        "near_duplicates": result.near_duplicates,
        "alerts": len(result.alerts),
    }
    log.info("batch_processed", batch_id=batch.id if batch else None, **summary)
    return summary


def _count_batch(ctx: Context, result: BatchResult) -> None:
    """Metrics for one batch, buffered (ingest.metrics.Buffer); a lost count never fails the job."""
    r, p = ctx.metrics, ctx.settings.redis_prefix
    metrics.record(r, p, "ingest_articles_stored_total", value=len(result.stored))
    metrics.record(r, p, "ingest_duplicates_total", {"kind": "near"}, result.near_duplicates)
    metrics.record(r, p, "ingest_duplicates_total", {"kind": "exact"}, result.exact_duplicates)
    for article in result.stored:
        metrics.record(r, p, "ingest_articles_language_total", {"language": article.language})
    metrics.record(r, p, "ingest_matches_total", value=len(result.alerts))


def enqueue_alerts(ctx: Context, alerts: list[Alert]) -> None:
    """Queue first attempts in one round trip; the outbox row already exists."""
    if not alerts:
        return
    queue = ctx.queues[1]
    datas = [
        queue.prepare_data(
            deliver_alert,
            args=(a.id,),
            job_id=alert_job_id(a.id, a.attempts),
            timeout=ALERT_TIMEOUT,
            result_ttl=RESULT_TTL,
            failure_ttl=FAILURE_TTL,
        )
        for a in alerts
    ]
    with ctx.redis.pipeline() as pipe:
        queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def lock_seconds(webhook_timeout: float) -> int:
    """How long one attempt holds its alert's lock: a killed worker's lock frees itself this soon."""
    return int(webhook_timeout) + LOCK_MARGIN_SECONDS


def deliver_alert(alert_id: str) -> str:
    """One delivery attempt; on failure, record it and schedule the next per the retry schedule."""
    ctx = get_context()
    lock = ctx.redis.lock(
        f"{ctx.settings.redis_prefix}alert-lock:{alert_id}",
        timeout=lock_seconds(ctx.settings.webhook_timeout),
        blocking=False,
    )
    if not lock.acquire():
        return "locked"  # another worker is sending it right now
    outcome = ""
    try:
        outcome = _attempt(ctx, alert_id)
        return outcome
    finally:
        # A delivered alert's lock is left to expire (one round trip fewer per alert): any later
        # job for it sends nothing either way, "locked" now or "delivered" after expiry.
        if outcome != "delivered":
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("alert_lock_lost", alert_id=alert_id)  # expired or flushed: harmless


def _attempt(ctx: Context, alert_id: str) -> str:
    try:
        alert, sub, secrets = ctx.store.get_delivery(alert_id)
    except NotFound:
        log.warning("alert_missing", alert_id=alert_id)
        return "missing"
    if alert.status != "pending":
        return alert.status  # delivered, held, digested or dead-lettered: at most one send per story
    bound = log.bind(
        alert_id=alert.id, subscription_id=sub.id, article_id=alert.article_id, webhook=sub.webhook
    )
    if sub.status == "paused":
        return "paused"  # stays pending; `ingest subs resume` (or the sweeper) queues it again
    if sub.status == "disabled":
        _record(ctx, alert, "failed", None, f"subscription disabled: {sub.status_reason}")
        metrics.record(ctx.metrics, ctx.settings.redis_prefix, "ingest_alerts_failed_total")
        return "failed"
    if sub.options.digest_minutes and not alert.is_digest:
        ctx.store.record_attempt(
            alert.id, status="held", attempts=alert.attempts, next_attempt_at=None, error=alert.last_error
        )
        bound.info("alert_held_for_digest", digest_minutes=sub.options.digest_minutes)
        return "held"
    if sub.options.rate_limit:
        wait = ratelimit.acquire(ctx.redis, ctx.settings.redis_prefix, sub.id, sub.options.rate_limit)
        if wait > 0:
            return _defer(ctx, alert, wait, bound)
    body = _payload(ctx, sub, alert)
    if body is None:
        _record(ctx, alert, "failed", None, "nothing left to send: the article was deleted")
        return "failed"
    try:
        delivery = deliver(
            ctx.webhooks, sub.webhook, alert.id, body, secrets, timeout=ctx.settings.webhook_timeout
        )
    except (AlertDeliveryError, FetchError) as exc:
        return _failed(ctx, sub, alert, exc, bound)
    ctx.store.record_delivered(alert.id, sub.id, attempts=alert.attempts + 1)
    metrics.record(ctx.metrics, ctx.settings.redis_prefix, "ingest_alerts_delivered_total")
    metrics.observe(ctx.metrics, ctx.settings.redis_prefix, "ingest_delivery_seconds", delivery.seconds)
    bound.info(
        "alert_delivered",
        status=delivery.status,
        seconds=round(delivery.seconds, 3),
        attempt=alert.attempts + 1,
        digest=alert.is_digest,
    )
    return "delivered"


def _payload(ctx: Context, sub: Subscription, alert: Alert) -> bytes | None:
    """The body of one alert or of one digest; None if its article(s) are gone."""
    if alert.is_digest:
        items = digest_items(ctx.store, alert)
        return build_digest_payload(sub, alert, items) if items else None
    try:
        article = ctx.store.get_article(alert.article_id)
    except NotFound:
        return None
    return build_payload(sub, article, alert.matched_terms)


def _defer(ctx: Context, alert: Alert, wait: float, bound: Bound) -> str:
    """Over the rate limit: the same attempt later (not a failure, nothing dropped)."""
    ctx.store.record_attempt(
        alert.id,
        status="pending",
        attempts=alert.attempts,
        next_attempt_at=utcnow() + timedelta(seconds=wait),
        error=alert.last_error,
    )
    job_id = f"{alert_job_id(alert.id, alert.attempts)}-rl{time.time_ns()}"
    ctx.queues[1].enqueue_in(
        timedelta(seconds=wait),
        deliver_alert,
        alert.id,
        job_id=job_id,
        job_timeout=ALERT_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
    )
    bound.info("alert_rate_limited", delay=round(wait, 1))
    return "deferred"


def _disable_reason(ctx: Context, exc: Exception, failing_since: datetime | None) -> str | None:
    """Why the subscription must be disabled after this failure, or None."""
    if isinstance(exc, AlertDeliveryError) and exc.gone:
        return f"receiver answered 410 Gone on {utcnow().date().isoformat()}"
    days = ctx.settings.disable_after_days
    if days > 0 and failing_since is not None and utcnow() - failing_since >= timedelta(days=days):
        return (
            f"every delivery failed since {iso(failing_since)} ({days:g} days without a success); "
            f"last error: {exc}"
        )
    return None


def _failed(ctx: Context, sub: Subscription, alert: Alert, exc: Exception, bound: Bound) -> str:
    attempts = alert.attempts + 1
    failing_since = ctx.store.record_subscription_delivery(sub.id, ok=False)
    reason = _disable_reason(ctx, exc, failing_since)
    if reason is not None:
        ctx.store.set_subscription_status(sub.id, "disabled", reason)
        bound.warning("subscription_disabled", reason=reason)
        delay = None
    else:
        delay = next_delay(ctx.settings.webhook_retry_schedule, attempts, getattr(exc, "retry_after", None))
    if delay is None:
        _record(ctx, alert, "failed", None, str(exc), attempts)
        metrics.record(ctx.metrics, ctx.settings.redis_prefix, "ingest_alerts_failed_total")
        bound.warning("alert_dead_lettered", error=str(exc), attempts=attempts)
        return "failed"
    _record(ctx, alert, "pending", delay, str(exc), attempts)
    metrics.record(ctx.metrics, ctx.settings.redis_prefix, "ingest_alerts_retried_total")
    ctx.queues[1].enqueue_in(
        timedelta(seconds=delay),
        deliver_alert,
        alert.id,
        job_id=alert_job_id(alert.id, attempts),
        job_timeout=ALERT_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
    )
    bound.warning("alert_retry_scheduled", error=str(exc), attempt=attempts, delay=round(delay, 1))
    return "retrying"


def _record(
    ctx: Context,
    alert: Alert,
    status: str,
    delay: float | None,
    error: str | None,
    attempts: int | None = None,
) -> None:
    next_at = utcnow() + timedelta(seconds=delay) if delay is not None else None
    ctx.store.record_attempt(
        alert.id,
        status=status,
        attempts=alert.attempts + 1 if attempts is None else attempts,
        next_attempt_at=next_at,
        error=error,
    )
