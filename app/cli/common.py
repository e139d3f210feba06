"""What every command shares: the process's runtime, JSON output."""

from __future__ import annotations

import json
from typing import Any

from app.runtime import Runtime
from ingest.models import iso


def runtime() -> Runtime:
    """The runtime of this command, from the environment (logging configured)."""
    return Runtime.from_env()


def emit(obj: dict[str, Any]) -> None:
    """One JSON object on a line of its own (stdout)."""
    print(json.dumps(obj, ensure_ascii=False))


def json_ready(value: Any) -> Any:
    """Datetimes as ISO 8601 UTC, tuples as lists, recursively."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [json_ready(v) for v in value]
    return iso(value) if hasattr(value, "tzinfo") else value
