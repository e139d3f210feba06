"""What every command shares: the process's runtime, the use cases over it, output to stdout."""

from __future__ import annotations

import json
from typing import Any

from app.runtime import Runtime
from ingest.models import iso
from ingest.services.usecases.alerts import Alerts
from ingest.services.usecases.feeds import Feeds
from ingest.services.usecases.reading import Reading
from ingest.services.usecases.subscriptions import Subscriptions
from ingest.services.usecases.views import to_builtins


def runtime() -> Runtime:
    """The runtime of this command, from the environment (logging configured)."""
    return Runtime.from_env()


def feeds(rt: Runtime) -> Feeds:
    return Feeds(rt.store, rt.settings, lambda: rt.refresher)


def subscriptions(rt: Runtime) -> Subscriptions:
    return Subscriptions(rt.store, rt.settings, rt.wakeup.wake)


def alerts(rt: Runtime) -> Alerts:
    return Alerts(rt.store, rt.settings, rt.wakeup.wake)


def reading(rt: Runtime) -> Reading:
    return Reading(rt.store)


def emit(obj: Any) -> None:
    """One JSON object (a dict or a view) on a line of its own (stdout)."""
    print(json.dumps(to_builtins(obj), ensure_ascii=False))


def row(*fields: Any) -> None:
    """One tab-separated line; None as empty, datetimes as ISO 8601."""
    print("\t".join("" if f is None else (iso(f) or "") if hasattr(f, "tzinfo") else str(f) for f in fields))


def say(sentence: str) -> None:
    """What a command did, in words, on stdout (scripts use `--json` instead)."""
    print(sentence)
