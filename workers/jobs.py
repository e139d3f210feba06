"""RQ job entry points: thin, importable, JSON arguments only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
import structlog

from ingest import metrics
from ingest.alert import build_payload, deliver, next_delay
from ingest.errors import AlertDeliveryError, FetchError, NotFound
from ingest.log import get_logger
from ingest.models import Alert, RawEntry, utcnow
from ingest.pipeline import BatchResult
from workers.context import Context, get_context
from workers.queues import ALERT_TIMEOUT, FAILURE_TTL, RESULT_TTL, alert_job_id

log = get_logger(__name__)

LOCK_SECONDS = 120


def process_entries(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Run a batch through the pipeline, then queue one delivery per new (subscription, story)."""
    ctx = get_context()
    raws = [RawEntry.from_dict(e) for e in entries]
    result = ctx.pipeline.process(raws)
    _count_batch(ctx, result)
    for article in result.stored:
        log.info("article_stored", article_id=article.id, url=article.url, story_id=article.story_id,
                 language=article.language, feed_url=article.feed_url)
    enqueue_alerts(ctx, result.alerts)
    summary = {"entries": len(raws), "stored": len(result.stored), "updated": result.updated,
               "unchanged": result.unchanged, "exact_duplicates": result.exact_duplicates,
               "near_duplicates": result.near_duplicates,
               "alerts": len(result.alerts)}
    log.info("batch_processed", **summary)
    return summary


def _count_batch(ctx: Context, result: BatchResult) -> None:
    """Metrics for one batch in one round trip; a lost count never fails the job."""
    with ctx.redis.pipeline(transaction=False) as pipe:
        r, p = pipe, ctx.settings.redis_prefix
        metrics.record(r, p, "ingest_articles_stored_total", value=len(result.stored))
        metrics.record(r, p, "ingest_duplicates_total", {"kind": "near"}, result.near_duplicates)
        metrics.record(r, p, "ingest_duplicates_total", {"kind": "exact"}, result.exact_duplicates)
        for article in result.stored:
            metrics.record(r, p, "ingest_articles_language_total", {"language": article.language})
        metrics.record(r, p, "ingest_matches_total", value=len(result.alerts))
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("metrics_failed", error=str(exc))


def enqueue_alerts(ctx: Context, alerts: list[Alert]) -> None:
    """Queue first attempts in one round trip; the outbox row already exists."""
    if not alerts:
        return
    queue = ctx.queues[1]
    datas = [queue.prepare_data(deliver_alert, args=(a.id,), job_id=alert_job_id(a.id, a.attempts),
                                timeout=ALERT_TIMEOUT, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
             for a in alerts]
    with ctx.redis.pipeline() as pipe:
        queue.enqueue_many(datas, pipeline=pipe)
        pipe.execute()


def deliver_alert(alert_id: str) -> str:
    """One delivery attempt; on failure, record it and schedule the next per the retry schedule."""
    ctx = get_context()
    lock = ctx.redis.lock(f"{ctx.settings.redis_prefix}alert-lock:{alert_id}", timeout=LOCK_SECONDS,
                          blocking=False)
    if not lock.acquire():
        return "locked"  # another worker is sending it right now
    try:
        return _attempt(ctx, alert_id)
    finally:
        lock.release()


def _attempt(ctx: Context, alert_id: str) -> str:
    try:
        alert = ctx.store.get_alert(alert_id)
    except NotFound:
        log.warning("alert_missing", alert_id=alert_id)
        return "missing"
    if alert.status != "pending":
        return alert.status  # delivered (or dead-lettered) already: at most one send per story
    sub = ctx.store.get_subscription(alert.subscription_id)
    bound = log.bind(alert_id=alert.id, subscription_id=sub.id, article_id=alert.article_id,
                     webhook=sub.webhook)
    if sub.status == "paused":
        return "paused"  # stays pending; resumes with the subscription
    if sub.status == "disabled":
        _record(ctx, alert, "failed", None, f"subscription disabled: {sub.status_reason}")
        metrics.record(ctx.redis, ctx.settings.redis_prefix, "ingest_alerts_failed_total")
        return "failed"
    article = ctx.store.get_article(alert.article_id)
    body = build_payload(sub, article, alert.matched_terms)
    try:
        delivery = deliver(ctx.http, sub.webhook, alert.id, body, ctx.store.get_signing_secrets(sub.id),
                           timeout=ctx.settings.webhook_timeout)
    except (AlertDeliveryError, FetchError) as exc:
        return _failed(ctx, alert, exc, bound)
    _record(ctx, alert, "delivered", None, None)
    metrics.record(ctx.redis, ctx.settings.redis_prefix, "ingest_alerts_delivered_total")
    metrics.observe(ctx.redis, ctx.settings.redis_prefix, "ingest_delivery_seconds", delivery.seconds)
    bound.info("alert_delivered", status=delivery.status, seconds=round(delivery.seconds, 3),
               attempt=alert.attempts + 1)
    return "delivered"


def _failed(ctx: Context, alert: Alert, exc: Exception,
            bound: structlog.typing.FilteringBoundLogger) -> str:
    attempts = alert.attempts + 1
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, AlertDeliveryError) and exc.gone:
        ctx.store.set_subscription_status(alert.subscription_id, "disabled",
                                          "receiver answered 410 Gone")
        delay = None
    else:
        delay = next_delay(ctx.settings.webhook_retry_schedule, attempts, retry_after)
    if delay is None:
        _record(ctx, alert, "failed", None, str(exc), attempts)
        metrics.record(ctx.redis, ctx.settings.redis_prefix, "ingest_alerts_failed_total")
        bound.warning("alert_dead_lettered", error=str(exc), attempts=attempts)
        return "failed"
    _record(ctx, alert, "pending", delay, str(exc), attempts)
    metrics.record(ctx.redis, ctx.settings.redis_prefix, "ingest_alerts_retried_total")
    ctx.queues[1].enqueue_in(timedelta(seconds=delay), deliver_alert, alert.id,
                             job_id=alert_job_id(alert.id, attempts), job_timeout=ALERT_TIMEOUT,
                             result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
    bound.warning("alert_retry_scheduled", error=str(exc), attempt=attempts, delay=round(delay, 1))
    return "retrying"


def _record(ctx: Context, alert: Alert, status: str, delay: float | None, error: str | None,
            attempts: int | None = None) -> None:
    next_at = utcnow() + timedelta(seconds=delay) if delay is not None else None
    ctx.store.record_attempt(alert.id, status=status,
                             attempts=alert.attempts + 1 if attempts is None else attempts,
                             next_attempt_at=next_at, error=error)
