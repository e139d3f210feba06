"""One poller pass over a loopback farm of feeds: seconds per pass and peak memory.

    .venv/bin/python benchmarks/polling.py [--feeds 2000] [--hosts 50] [--redis redis://127.0.0.1:6379/13]

A child process serves the farm: `--hosts` loopback addresses (127.0.0.1, 127.0.0.2, ...),
the feeds spread over them, each feed 10 RSS items with an ETag. Passes, each polling every feed:

1. first poll: every feed 200, every entry new;
2. mostly unchanged: 98 % answer 304 to the conditional GET, 2 % have one new item;
3. all changed: every feed has one new item (2,000 x 200).

Redis: a database without the test suite's `ingest-test-run` key (the given one, else the
highest empty one), flushed before and after;
SQLite in a temporary directory, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.settings import Settings


def _feed(index: int, version: int) -> bytes:
    items = "".join(
        f"<item><guid>f{index}-i{n}</guid><title>Feed {index} item {n}</title>"
        f"<pubDate>Wed, 01 May 2024 {n % 24:02d}:00:00 GMT</pubDate>"
        f"<description>Body of item {n} of feed {index}, some words to parse.</description></item>"
        for n in range(version, version + 10)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {index}</title>{items}</channel></rss>'
    ).encode()


def serve(
    hosts: int, port: int, ready: multiprocessing.synchronize.Event, versions: multiprocessing.Array
) -> None:  # type: ignore[valid-type]
    """The farm: one asyncio server per loopback address; /feed/N answers 304 to the current ETag."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                pairs = (line.partition(":") for line in lines[1:] if line)
                headers = {k.lower(): v.strip() for k, _, v in pairs}
                index = int(path.rsplit("/", 1)[1])
                version = versions[index]
                etag = f'"{index}-{version}"'
                if headers.get("if-none-match") == etag:
                    writer.write(
                        f"HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nContent-Length: 0\r\n\r\n".encode()
                    )
                else:
                    body = _feed(index, version)
                    writer.write(
                        f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {etag}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [
            await asyncio.start_server(handle, f"127.0.0.{h + 1}", port, backlog=1024) for h in range(hosts)
        ]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def _free_redis_db(wanted: str) -> str:
    """`wanted` if its db lacks the test-run marker, else the highest empty db of that server."""
    client = redis.Redis.from_url(wanted)
    busy = client.exists("ingest-test-run")
    client.close()
    if not busy:
        return wanted
    base = wanted.rsplit("/", 1)[0]
    for db in range(15, 0, -1):
        client = redis.Redis.from_url(f"{base}/{db}")
        empty = client.dbsize() == 0
        client.close()
        if empty:
            return f"{base}/{db}"
    raise SystemExit(f"{wanted} is in use by a test run and no other db is empty; pick one with --redis")


def _rss_mib() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB."""
    current = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()

    from app.poller import poll_once
    from app.runtime import Runtime
    from ingest.log import configure_logging

    port = 18000 + os.getpid() % 1000
    versions = multiprocessing.Array("i", args.feeds, lock=False)
    ready = multiprocessing.Event()
    farm = multiprocessing.Process(target=serve, args=(args.hosts, port, ready, versions), daemon=True)
    farm.start()
    ready.wait(30)
    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-poll-"))
    redis_url = _free_redis_db(args.redis)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    settings = Settings.from_env(
        {
            "INGEST_DATA_DIR": str(workdir),
            "REDIS_URL": redis_url,
            "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8",
            "INGEST_LOG_LEVEL": "error",
        }
    )
    configure_logging(settings)
    ctx = Runtime(settings)
    try:
        for i in range(args.feeds):
            ctx.store.add_feed(f"http://127.0.0.{i % args.hosts + 1}:{port}/feed/{i}")
        print(
            f"{args.feeds} feeds on {args.hosts} loopback hosts; concurrency {settings.fetch_concurrency}, "
            f"{settings.fetch_per_host} per host"
        )
        passes = [
            ("first poll (all 200, all new)", lambda: None),
            (
                "mostly 304 (2 % changed)",
                lambda: [versions.__setitem__(i, versions[i] + 1) for i in range(0, args.feeds, 50)],
            ),
            (
                "all changed (200, one new item each)",
                lambda: [versions.__setitem__(i, versions[i] + 1) for i in range(args.feeds)],
            ),
        ]
        for name, prepare in passes:
            prepare()
            summary = poll_once(ctx, only_due=False)
            current, peak = _rss_mib()
            print(
                f"{name:40s} {summary.seconds:7.2f} s  ok={summary.ok} 304={summary.not_modified} "
                f"errors={summary.errors} new={summary.new} jobs={summary.jobs}  "
                f"RSS {current:.0f} MiB (peak {peak:.0f} MiB)"
            )
    finally:
        ctx.close()
        client.flushdb()
        client.close()
        farm.terminate()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
