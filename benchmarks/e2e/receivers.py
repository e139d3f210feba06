"""A farm of loopback webhook receivers, each on its own port (its own origin), some hostile.

One asyncio process serves `count` ports. Receiver `n`'s role is set at each reset:

* healthy: reads the request, checks the Standard Webhooks signature, answers 204 at once;
* dribble: reads the request, then sends its status line and headers one byte per second,
  never finishing them;
* hang: reads the request and never answers;
* error: answers 500;
* reset: reads the request and resets the connection (RST, SO_LINGER 0).

Every request is recorded with its webhook-id and its start (first byte received) and end
(answer written, connection reset, or the client gone) times, so overlapping attempts of one
webhook-id (a duplicate concurrent attempt) can be counted afterwards.

Control (GET on the control port): `/reset?roles=dribble,hang,error,reset` (the roles of
receivers 0, 1, 2, ...; the rest healthy; records cleared), `/dump` (JSON: `requests` as
[receiver, webhook_id, start, end, outcome, subscription_id, article_url], `bad_signatures`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import socket
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROLES = ("healthy", "dribble", "hang", "error", "reset")
HOSTILE = ("dribble", "hang", "error", "reset")
MAX_HOLD = 3600.0  # seconds a hanging or dribbling receiver holds a request at most


class Farm:
    """Roles and records of all receivers."""

    def __init__(self, count: int, secret: str) -> None:
        self.count = count
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.roles = ["healthy"] * count
        self.requests: list[list[Any]] = []
        self.bad_signatures = 0

    def reset(self, roles: list[str]) -> None:
        self.roles = [*roles, *["healthy"] * (self.count - len(roles))][: self.count]
        self.requests, self.bad_signatures = [], 0

    def check(self, headers: dict[str, str], body: bytes) -> tuple[str, str]:
        """Count a bad signature; the subscription id and article URL of the body."""
        msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        expected = base64.b64encode(
            hmac.new(self.key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        given = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split()]
        if not any(hmac.compare_digest(expected, s) for s in given):
            self.bad_signatures += 1
        try:
            data = json.loads(body)["data"]
            return str(data.get("subscription_id", "")), str(data.get("article", {}).get("url", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            return "", ""


async def _read_request(reader: asyncio.StreamReader) -> tuple[float, dict[str, str], bytes] | None:
    """The next request on a connection: its start time, headers and body (None at the end)."""
    first = await reader.read(1)
    if not first:
        return None
    start = time.time()
    head = first + await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    pairs = (ln.partition(":") for ln in lines[1:] if ln)
    headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
    length = int(headers.get("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return start, headers, body


async def _hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, dribble: bool) -> str:
    """Keep the request open until the client leaves; dribbling writes one byte a second meanwhile."""
    line = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 4000
    deadline = time.monotonic() + MAX_HOLD
    sent = 0
    while time.monotonic() < deadline:
        try:
            if await asyncio.wait_for(reader.read(1), timeout=1.0) == b"":
                return "client closed"
        except TimeoutError:
            if dribble:
                writer.write(line[sent % len(line) : sent % len(line) + 1])
                sent += 1
                await writer.drain()
    return "held to the end"


async def _answer(farm: Farm, n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Serve one request on receiver `n`; whether the connection stays open for another."""
    got = await _read_request(reader)
    if got is None:
        return False
    start, headers, body = got
    role = farm.roles[n]
    sub, url = farm.check(headers, body) if role == "healthy" else ("", "")
    record = [n, headers.get("webhook-id", ""), start, 0.0, role, sub, url]
    farm.requests.append(record)
    keep = True
    try:
        if role == "healthy":
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        elif role == "error":
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops\n")
            await writer.drain()
        elif role == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            keep = False
        else:
            record[4] = f"{role}: {await _hold(reader, writer, role == 'dribble')}"
            keep = False
    except (ConnectionError, OSError) as exc:
        record[4] = f"{role}: {type(exc).__name__}"
        keep = False
    record[3] = time.time()
    return keep


async def _serve(farm: Farm, ready: Callable[[list[int]], None]) -> None:
    def handler(n: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while await _answer(farm, n, reader, writer):
                    pass
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
                pass
            finally:
                writer.close()

        return handle

    async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        target = urlsplit(head.decode("latin-1").split(" ")[1])
        if target.path.endswith("/reset"):
            roles = parse_qs(target.query).get("roles", [""])[0]
            farm.reset([r for r in roles.split(",") if r])
        out = json.dumps({"requests": farm.requests, "bad_signatures": farm.bad_signatures,
                          "roles": farm.roles}).encode()  # fmt: skip
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                     + f"Content-Length: {len(out)}\r\n\r\n".encode() + out)  # fmt: skip
        await writer.drain()
        writer.close()

    servers = [await asyncio.start_server(handler(n), "127.0.0.1", 0, backlog=256) for n in range(farm.count)]
    servers.append(await asyncio.start_server(control, "127.0.0.1", 0))
    ready([s.sockets[0].getsockname()[1] for s in servers])
    await asyncio.gather(*(s.serve_forever() for s in servers))


def _child(count: int, secret: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    asyncio.run(_serve(Farm(count, secret), out.put))


def start(count: int, secret: str) -> tuple[multiprocessing.Process, list[int], int]:
    """Serve `count` receivers from a child process: it, their ports, the control port."""
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    proc = multiprocessing.Process(target=_child, args=(count, secret, out), daemon=True, name="receivers")
    proc.start()
    ports = list(out.get(timeout=60))
    return proc, ports[:-1], ports[-1]


def overlaps(requests: list[list[Any]]) -> int:
    """Requests of one webhook-id that started before an earlier one of it had ended."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for _, msg_id, start, end, *_ in requests:
        spans.setdefault(msg_id, []).append((start, end or float("inf")))
    found = 0
    for items in spans.values():
        items.sort()
        latest_end = float("-inf")
        for start, end in items:
            if start < latest_end:
                found += 1
            latest_end = max(latest_end, end)
    return found
