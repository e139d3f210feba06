"""The composition root: settings in, adapters built once per process, services wired to them.

Entry points (the CLI's commands, the API, RQ jobs through `workers.jobs.bind`, the poller and
sender loops) ask a `Runtime` for what they need; nothing below this module reads the
environment or builds an adapter itself. Expensive parts (language models, the matcher) are
built on first use and kept for the process's life.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import httpx
import redis

from ingest.alert.wakeup import RedisWakeup
from ingest.log import configure_logging
from ingest.metrics import RedisMetrics
from ingest.services.intake import Intake
from ingest.services.prepare import Preparer
from ingest.services.process import BatchRunner, Pipeline
from ingest.services.recovery import Recovery
from ingest.services.refresh import Refresher
from ingest.settings import Settings
from ingest.store import open_store
from ingest.store.base import Store
from workers.queues import RQBatchQueue


def redis_url(settings: Settings) -> str:
    """REDIS_URL, or the embedded server of the data directory (started on first use)."""
    if settings.redis_url:
        return settings.redis_url
    from app.redis_server import start_embedded

    return start_embedded(settings.data_dir / "redis")


@dataclass
class Runtime:
    """What one process's entry points share; `close()` releases it."""

    settings: Settings
    _closers: list[Callable[[], object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        configure_logging(self.settings)  # logs go to stderr before anything can log to stdout

    @classmethod
    def from_env(cls) -> Runtime:
        return cls(Settings.from_env())

    # -- adapters ----------------------------------------------------------------------------
    @cached_property
    def redis_url(self) -> str:
        return redis_url(self.settings)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, health_check_interval=30)

    @cached_property
    def store(self) -> Store:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(self.settings.effective_database_url, self.settings.database_password)
        self._closers.append(store.close)
        return store

    @cached_property
    def metrics(self) -> RedisMetrics:
        """This process's counts, sent to Redis about once a second."""
        metrics = RedisMetrics(self.redis, self.settings.redis_prefix)
        self._closers.append(metrics.flush)
        return metrics

    @cached_property
    def batch_queue(self) -> RQBatchQueue:
        s = self.settings
        return RQBatchQueue(self.redis, prefix=s.redis_prefix, queue_prefix=s.queue_prefix,
                            job_timeout=s.job_timeout)  # fmt: skip

    @cached_property
    def wakeup(self) -> RedisWakeup:
        return RedisWakeup(self.redis, self.redis_url, self.settings.redis_prefix)

    @cached_property
    def http(self) -> httpx.Client:
        """Client for article pages (full-text feeds): refuses non-public addresses at connect time."""
        from ingest.fetch import make_client

        client = make_client(self.settings)
        self._closers.append(client.close)
        return client

    # -- services ----------------------------------------------------------------------------
    @cached_property
    def intake(self) -> Intake:
        return Intake(self.store, self.batch_queue, self.metrics, batch_size=self.settings.batch_size)

    @cached_property
    def refresher(self) -> Refresher:
        return Refresher(self.store, self.intake, self.metrics, self.settings)

    @cached_property
    def recovery(self) -> Recovery:
        s = self.settings
        return Recovery(
            self.store, self.batch_queue, after=s.recovery_after, max_attempts=s.batch_max_attempts
        )

    @cached_property
    def preparer(self) -> Preparer:
        """Clean and language (the models load here): the expensive part, built once."""
        from ingest.clean import load_rules
        from ingest.fetch import page_fetcher
        from ingest.language.detect import LanguageDetector

        s = self.settings
        detector = LanguageDetector(short_text_models=s.short_text_models,
                                    loads_per_minute=s.short_text_loads_per_minute)  # fmt: skip
        return Preparer(detector, load_rules(s.clean_rules), fetcher=page_fetcher(s, self.http),
                        fulltext_min_words=s.fulltext_min_words)  # fmt: skip

    @cached_property
    def pipeline(self) -> Pipeline:
        from ingest.dedup.index import Deduplicator

        s = self.settings
        dedup = Deduplicator(self.redis, prefix=s.redis_prefix, window_days=s.dedup_window_days,
                             threshold=s.dedup_threshold,
                             boilerplate_docs=s.dedup_boilerplate_docs)  # fmt: skip
        return Pipeline(self.store, dedup, self.preparer)

    @cached_property
    def batch_runner(self) -> BatchRunner:
        return BatchRunner(self.store, self.pipeline, self.metrics, self.wakeup)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()
