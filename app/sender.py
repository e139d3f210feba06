"""The sender process (`ingest send`): the delivery service on an asyncio loop of its own.

Ingestion never waits on a receiver: workers only write outbox rows and ring the sender's
bell; attempts run here, in as many sender processes as wanted (claims are exclusive).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from collections.abc import Callable

from app.lifecycle import use_daemon_threads
from app.runtime import Runtime
from ingest.alert.ratelimit import RedisRateLimiter
from ingest.alert.sender import WebhookSender
from ingest.net.clients import make_webhook_session
from ingest.services.delivery import DeliveryService
from ingest.services.dispatch import Dispatcher
from ingest.services.sweeps import Sweeps


def sender_id() -> str:
    """This process's lease owner name: host, pid and a random part (pids repeat across containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def delivery_service(rt: Runtime) -> DeliveryService:
    limiter = RedisRateLimiter(rt.redis, rt.settings.redis_prefix)
    return DeliveryService(rt.store, limiter, rt.metrics, rt.settings, owner=sender_id())


def run_sender(rt: Runtime, stop: threading.Event, *, burst: bool = False,
               beat: Callable[[], None] = lambda: None) -> int:  # fmt: skip
    """Deliver until `stop` is set (or, with `burst`, until nothing is due); the attempts made."""
    settings = rt.settings
    service = delivery_service(rt)

    async def main() -> int:
        use_daemon_threads()
        session = make_webhook_session(settings, total=settings.sender_concurrency,
                                       per_origin=settings.sender_per_receiver)  # fmt: skip
        try:
            sender = WebhookSender(session, settings.allowed_networks, settings.webhook_timeout)
            dispatcher = Dispatcher(service, sender, rt.wakeup, max_in_flight=settings.sender_concurrency,
                                    per_origin=settings.sender_per_receiver,
                                    sweeps=Sweeps(rt.store, service.owner))  # fmt: skip
            return await dispatcher.run(stop, burst=burst, beat=beat)
        finally:
            await session.close()
            await rt.wakeup.aclose()

    return asyncio.run(main())
