"""RQ job entry points: importable by dotted path, JSON arguments only, thin.

A job unpacks its id and calls a service. The service comes from the process that runs the
worker (`ingest worker` binds it with `bind` before the first job), so this package never
imports the composition root.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class BatchService(Protocol):
    def run(self, batch_id: int) -> dict[str, Any]: ...


_service: Callable[[], BatchService] | None = None


def bind(service: Callable[[], BatchService]) -> None:
    """Give the jobs of this process their service (a factory: built on first use)."""
    global _service
    _service = service


def process_batch(batch_id: int) -> dict[str, Any]:
    """The poller's job: stored batch `batch_id` (a `pending_batches` row) through the pipeline."""
    if _service is None:
        raise RuntimeError("no batch service bound: run jobs with `ingest worker`")
    return _service().run(batch_id)
