"""Helpers shared by the delivery, subscription CLI and backfill tests (not a test module)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from app.runtime import Runtime
from app.sender import run_sender
from ingest.alert.signature import new_secret
from ingest.models import Alert, Article, Subscription, SubscriptionOptions, alert_id, utcnow
from ingest.store.base import Store
from tests.conftest import LoopbackServer, RecordedRequest
from workers import jobs
from workers.worker import run_worker

SECRET = new_secret()


def make_article(
    store: Store,
    n: int,
    *,
    story: str | None = None,
    language: str = "en",
    feed_id: int = 1,
    fetched_at: datetime | None = None,
    title: str | None = None,
    text: str = "Armenia and Azerbaijan agreed to a ceasefire on Saturday.",
) -> Article:
    """Store one article (its own story unless `story` is given) and return it."""
    article = Article(
        id=f"art_{n}",
        feed_id=feed_id,
        feed_url=f"https://feeds.example/{feed_id}.xml",
        entry_key=f"e{n}",
        url=f"https://news.example/{n}",
        title=title or f"Ceasefire report {n}",
        text=text,
        summary=None,
        language=language,
        language_confidence=0.99,
        published_at=None,
        story_id=story or f"art_{n}",
        content_hash=f"hash{n}",
        fetched_at=fetched_at or utcnow(),
    )
    store.add_articles([article])
    return article


def make_sub(
    store: Store, webhook: str, sub_id: str = "sub_test", query: str = "ceasefire", **options: object
) -> Subscription:
    """Add an active subscription signed with SECRET."""
    return store.add_subscription(
        Subscription(
            id=sub_id,
            name=sub_id,
            query=query,
            webhook=webhook,
            secret=SECRET,
            created_at=utcnow(),
            options=SubscriptionOptions(**options),
        )
    )  # type: ignore[arg-type]


def queue_alerts(ctx: Runtime, sub: Subscription, articles: list[Article]) -> list[Alert]:
    """Record one outbox alert per article's story, as the pipeline does (the sender finds them due)."""
    alerts = ctx.store.add_alerts(
        [
            Alert(
                id=alert_id(sub.id, a.story_id),
                subscription_id=sub.id,
                story_id=a.story_id,
                article_id=a.id,
                matched_terms=["ceasefire"],
                created_at=utcnow() - timedelta(seconds=1),
            )
            for a in articles
        ]
    )
    ctx.wakeup.wake()
    return alerts


def drain(ctx: Runtime, until: Callable[[], bool], *, limit: float = 40.0) -> None:
    """Run the sender in bursts (retries as they come due) until `until()` holds; fail if it never does."""
    deadline = time.monotonic() + limit
    while not until():
        assert time.monotonic() < deadline, "the condition never became true"
        run_sender(ctx, threading.Event(), burst=True)
        time.sleep(0.2)


def statuses(ctx: Runtime, sub_id: str | None = None) -> list[str]:
    """Every outbox status, sorted (optionally one subscription's)."""
    return sorted(
        a.status for a in ctx.store.list_alerts(limit=1000) if sub_id is None or a.subscription_id == sub_id
    )


def posts(server: LoopbackServer, path: str = "/hook") -> list[RecordedRequest]:
    return [r for r in server.requests if r.path == path and r.method == "POST"]


def lower(request: RecordedRequest) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def work(ctx: Runtime) -> bool:
    """Run a burst worker on the ingest queue (batches through the pipeline); whether a job ran."""
    jobs.bind(lambda: ctx.batch_runner)
    return run_worker(ctx.batch_queue.queue, prefix=ctx.settings.redis_prefix, burst=True)


def deliver(ctx: Runtime) -> int:
    """Run the sender once over what is due now; the attempts it made."""
    return run_sender(ctx, threading.Event(), burst=True)
