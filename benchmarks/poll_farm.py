"""The polling benchmark's farm: many loopback hosts, conditional GET, every request counted.

Feed `f` lives on host `f % hosts` at `http://127.0.X.Y:PORT/feed/f` (X = 1 + h // 250,
Y = 1 + h % 250: 1,000 hosts are 127.0.1.1 ... 127.0.4.250). Version `v` of a feed carries items
v .. v + 9 with an ETag `"f-v"`; a request whose If-None-Match is the current ETag gets 304.
Raising `versions[f]` by one publishes one new item.

The hosts are split over `procs` server processes (asyncio, keep-alive), so the farm is not
what limits one or two pollers. Counters live in shared memory (one writer per host: the
process serving it, one thread, no lock): fetches per feed, and per host the requests open now
and the most ever open at once (a request is open from its head read to its answer written;
every answer waits `latency` seconds, so concurrent requests overlap as they do on the wire).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.sharedctypes
import socket
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np


def host_address(h: int) -> str:
    return f"127.0.{1 + h // 250}.{1 + h % 250}"


def feed_url(f: int, hosts: int, port: int) -> str:
    return f"http://{host_address(f % hosts)}:{port}/feed/{f}"


def document(f: int, version: int) -> bytes:
    """RSS 2.0 of feed `f` at `version`: ten items, newest first."""
    items = "".join(
        f"<item><guid>f{f}-i{n}</guid><title>Feed {f} item {n}</title>"
        f"<link>https://site{f % 997}.example/{f}/{n}.html</link>"
        f"<pubDate>Wed, 01 May 2024 {n % 24:02d}:{n % 60:02d}:00 GMT</pubDate>"
        f"<description>Body of item {n} of feed {f}, a few words for the parser to read.</description>"
        f"</item>"
        for n in range(version + 9, version - 1, -1)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {f}</title>'
        f"<link>https://site{f % 997}.example/</link>{items}</channel></rss>"
    ).encode()


def etag(f: int, version: int) -> str:
    return f'"{f}-{version}"'


@dataclass
class Counters:
    """Shared arrays, viewed as numpy arrays by the orchestrator."""

    versions: Any
    fetches: Any
    open_now: Any
    open_max: Any

    @classmethod
    def make(cls, feeds: int, hosts: int) -> Counters:
        raw = multiprocessing.sharedctypes.RawArray
        return cls(raw("i", feeds), raw("i", feeds), raw("i", hosts), raw("i", hosts))

    def view(self, name: str) -> np.ndarray[Any, np.dtype[np.int32]]:
        return np.frombuffer(getattr(self, name), dtype=np.int32)

    def reset(self) -> None:
        """Counts to zero between runs (the farm is idle then)."""
        for name in ("fetches", "open_now", "open_max"):
            self.view(name)[:] = 0


def _serve(
    proc: int, procs: int, feeds: int, hosts: int, port: int, latency: float, counters: Counters, ready: Any
) -> None:
    versions, fetches = counters.versions, counters.fetches
    open_now, open_max = counters.open_now, counters.open_max

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                target = head[: head.index(b"\r\n")].split(b" ")[1]
                f = int(target.rsplit(b"/", 1)[1])
                h = f % hosts
                open_now[h] += 1
                if open_now[h] > open_max[h]:
                    open_max[h] = open_now[h]
                fetches[f] += 1
                tag = etag(f, versions[f])
                match = b"if-none-match: " + tag.encode() + b"\r\n" in head.lower()
                if latency:
                    await asyncio.sleep(latency)
                if match:
                    writer.write(f"HTTP/1.1 304 Not Modified\r\nETag: {tag}\r\n\r\n".encode())
                else:
                    body = document(f, versions[f])
                    writer.write(
                        f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: {tag}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + body
                    )
                open_now[h] -= 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, IndexError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = []
        for h in range(proc, hosts, procs):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host_address(h), port))
            servers.append(await asyncio.start_server(handle, sock=sock, backlog=1024))
        ready.put(proc)
        await asyncio.gather(*(s.serve_forever() for s in servers))

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    feeds: int, hosts: int, *, procs: int = 2, latency: float = 0.002
) -> tuple[list[multiprocessing.Process], int, Counters]:
    """Serve the farm from `procs` child processes; returns them, the port and the shared counters."""
    counters = Counters.make(feeds, hosts)
    port = free_port()
    ready: multiprocessing.Queue[int] = multiprocessing.Queue()
    children = [
        multiprocessing.Process(
            target=_serve,
            args=(p, procs, feeds, hosts, port, latency, counters, ready),
            daemon=True,
            name=f"farm-{p}",
        )
        for p in range(procs)
    ]
    for child in children:
        child.start()
    for _ in children:
        ready.get(timeout=60)
    print(f"farm: {feeds} feeds on {hosts} hosts, port {port}, {procs} processes", file=sys.stderr)
    return children, port, counters
