"""What the API's request handling costs: microseconds per request, in-process, on SQLite.

    .venv/bin/python benchmarks/api_overhead.py [--requests 2000]

Drives the ASGI application directly (no sockets, no uvicorn) with httpx's ASGI transport, over a
SQLite store in a temporary directory holding 200 articles and one subscription, so the figures
are the framework, validation, serialisation and store call of each request. Per request kind:
median wall microseconds and this process's CPU per request. Also prints the time to import the
API module (what every `ingest api` start pays). Uses only `create_app` and `deps_from_runtime`,
whose signatures have not changed, so the same script measures an older checkout (run it there).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from app.api import create_app, deps_from_runtime
from app.runtime import Runtime
from ingest.log import configure_logging
from ingest.models import Article, Subscription
from ingest.settings import Settings

T0 = datetime(2024, 5, 1, tzinfo=UTC)
HOOK = "https://hooks.example/ingest"


def seed(rt: Runtime) -> str:
    rt.store.add_articles(
        [
            Article(
                id=f"art_{n}",
                feed_id=1,
                feed_url="https://feed.example/rss",
                entry_key=f"k{n}",
                url=f"https://news.example/{n}",
                title=f"Title {n}",
                text=f"Body {n} of the story.",
                summary=None,
                language="en" if n % 2 else "de",
                language_confidence=0.9,
                published_at=T0,
                story_id=f"art_{n}",
                content_hash=f"h{n}",
                fetched_at=T0 + timedelta(minutes=n),
            )
            for n in range(200)
        ]
    )
    sub = Subscription(
        id="sub_bench",
        name="bench",
        query="Armenia",
        webhook=HOOK,
        secret="whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
        created_at=T0,
    )
    return rt.store.add_subscription(sub).id


REQUESTS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("articles, filtered", "GET", "/articles?language=en&limit=20", None),
    ("one article", "GET", "/articles/art_7", None),
    ("subscriptions", "GET", "/subscriptions", None),
    ("bad feed body (422)", "POST", "/feeds", {"url": "https://a.example/rss", "interval": 5}),
    ("rename subscription", "PATCH", "/subscriptions/sub_bench", {"name": "renamed"}),
]


async def measure(app: Any, n: int) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for label, method, path, body in REQUESTS:
            for _ in range(50):  # warm up
                await client.request(method, path, json=body)
            walls = []
            cpu0 = time.process_time()
            for _ in range(n):
                t = time.perf_counter()
                resp = await client.request(method, path, json=body)
                walls.append(time.perf_counter() - t)
            cpu = (time.process_time() - cpu0) / n
            print(
                f"{label:24} {resp.status_code}  median {statistics.median(walls) * 1e6:7.0f} us"
                f"  cpu {cpu * 1e6:7.0f} us/request"
            )


def import_ms() -> float:
    code = "import time; t = time.perf_counter(); import app.api.app; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(5)]
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env(
            {"INGEST_DATA_DIR": tmp, "REDIS_URL": "redis://127.0.0.1:1/0", "INGEST_LOG_LEVEL": "error"}
        )
        configure_logging(settings)
        rt = Runtime(settings)
        seed(rt)
        asyncio.run(measure(create_app(deps_from_runtime(rt), token=None), args.requests))
        rt.close()
    print(f"import app.api.app: {import_ms():.0f} ms (median of 5)")


if __name__ == "__main__":
    main()
