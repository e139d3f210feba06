"""Per-process dependencies, built once: models load before the first job, not per job."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import httpx
import redis

from ingest.log import configure_logging
from ingest.metrics import Buffer
from ingest.settings import Settings
from ingest.store import open_store
from ingest.store.base import Store

if TYPE_CHECKING:
    from ingest.alert.http_client import WebhookClient


def redis_url(settings: Settings) -> str:
    """REDIS_URL, or the embedded server of the data directory (started on first use)."""
    if settings.redis_url:
        return settings.redis_url
    from app.redis_server import start_embedded

    return start_embedded(settings.data_dir / "redis")


@dataclass
class Context:
    """What jobs, the poller and the CLI share within one process."""

    settings: Settings
    _closers: list = field(default_factory=list)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(redis_url(self.settings), health_check_interval=30)

    @cached_property
    def metrics(self) -> Buffer:
        """This process's counts, sent to Redis about once a second (ingest.metrics.Buffer)."""
        buffer = Buffer(self.redis)
        self._closers.append(buffer.flush)
        return buffer

    @cached_property
    def store(self) -> Store:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(self.settings.effective_database_url, self.settings.database_password)
        self._closers.append(store.close)
        return store

    @cached_property
    def pipeline(self):  # type: ignore[no-untyped-def]
        """The loaded pipeline (language models included): the expensive part, built once."""
        from ingest.clean import load_rules
        from ingest.clean.extract import page_fetcher
        from ingest.dedup.index import Deduplicator
        from ingest.language.detect import LanguageDetector
        from ingest.services.process import Pipeline, Preparer

        dedup = Deduplicator(
            self.redis,
            prefix=self.settings.redis_prefix,
            window_days=self.settings.dedup_window_days,
            threshold=self.settings.dedup_threshold,
        )
        preparer = Preparer(
            LanguageDetector(
                short_text_models=self.settings.short_text_models,
                loads_per_minute=self.settings.short_text_loads_per_minute,
            ),
            load_rules(self.settings.clean_rules),
            fetcher=page_fetcher(self.settings, self.http),
            fulltext_min_words=self.settings.fulltext_min_words,
        )
        return Pipeline(self.store, dedup, preparer)

    @cached_property
    def http(self) -> httpx.Client:
        """Client for the page fetcher (full-text feeds): refuses non-public addresses at connect time."""
        from ingest.fetch import make_client

        client = make_client(self.settings)
        self._closers.append(client.close)
        return client

    @cached_property
    def webhooks(self) -> WebhookClient:
        """Client for webhook deliveries: urllib3 pools that refuse non-public addresses at connect time."""
        from ingest.alert.http_client import make_webhook_client

        client = make_webhook_client(self.settings)
        self._closers.append(client.close)
        return client

    @cached_property
    def queues(self):  # type: ignore[no-untyped-def]
        from workers.queues import get_queues

        return get_queues(self.redis, self.settings.queue_prefix)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


_current: Context | None = None


def init_context(settings: Settings | None = None) -> Context:
    """Make (or replace) the process's context; the CLI calls it with parsed settings."""
    global _current
    settings = settings or Settings.from_env()
    configure_logging(settings)
    if _current is not None:
        _current.close()
    _current = Context(settings)
    return _current


def get_context() -> Context:
    """The process's context; a job started by a plain `rq worker` builds it from the environment."""
    return _current or init_context()
